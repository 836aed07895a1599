/*
 * weft_netns: the one system call Node does not offer, setns(2), for the
 * calling (main JS) thread only. The router switches into a container's
 * network namespace, opens a netlink socket there synchronously and switches
 * back (src/adapters/kernel/netns-addon.ts); the socket keeps the namespace
 * it was created in. Errors are thrown as Error objects carrying the errno
 * name in `code` (EINVAL, EPERM, ...), like Node's own system errors.
 * rtnl.c adds rtnetlink requests run on libuv's thread pool.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <node_api.h>

void weft_register_rtnl(napi_env env, napi_value exports);

napi_value weft_throw_errno(napi_env env, int err, const char *syscall) {
  const char *name = err == EBADF ? "EBADF" : err == EINVAL ? "EINVAL" : err == EPERM ? "EPERM" : err == ENOMEM ? "ENOMEM" : err == ENOSYS ? "ENOSYS" : err == EMFILE ? "EMFILE" : err == EAFNOSUPPORT ? "EAFNOSUPPORT" : "EUNKNOWN";
  char msg[128];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_throw_error(env, name, msg);
  return NULL;
}

/* setns(fd, nstype): fd of /proc/PID/ns/net or a bind mount of it; nstype CLONE_NEWNET or 0. */
static napi_value js_setns(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, nstype = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &nstype) != napi_ok) {
    napi_throw_type_error(env, NULL, "setns(fd, nstype) takes two integers");
    return NULL;
  }
  if (setns(fd, nstype) != 0) return weft_throw_errno(env, errno, "setns");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, flag;
  if (napi_create_function(env, "setns", NAPI_AUTO_LENGTH, js_setns, NULL, &fn) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "setns", fn);
  napi_create_int32(env, CLONE_NEWNET, &flag);
  napi_set_named_property(env, exports, "CLONE_NEWNET", flag);
  weft_register_rtnl(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
