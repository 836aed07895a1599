/*
 * One rtnetlink request on a thread of libuv's pool instead of the main JS
 * thread. The kernel does the work of a request inside sendmsg(2), in the
 * sender's thread: creating a veth pair costs ~1.2 ms there, deleting one
 * waits ~20 ms for RCU. Done here, that time overlaps with what the main
 * thread does meanwhile (the allocation's commit) or blocks nobody.
 *
 *   rtnlOpen() -> fd       a blocking NETLINK_ROUTE socket in the calling
 *                          thread's netns (a socket keeps its netns), with a
 *                          10 s receive timeout so no pool thread hangs
 *   rtnlTransact(fd, request, callback(err, replies))
 *                          sends `request` (whole messages with their
 *                          headers) and receives until the NLMSG_ERROR (the
 *                          ACK or the error) answering its sequence number;
 *                          `replies` holds every message with that number.
 *                          One transaction per socket at a time.
 *   rtnlClose(fd)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <node_api.h>

napi_value weft_throw_errno(napi_env env, int err, const char *syscall);

#define RECV_BUF 65536

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref request_ref;
  int fd;
  const char *req;
  size_t req_len;
  char *out;
  size_t out_len;
  int err;
  const char *failed_call;
} transact_t;

static int append(transact_t *t, const char *p, size_t n) {
  char *grown = realloc(t->out, t->out_len + n);
  if (grown == NULL) return ENOMEM;
  memcpy(grown + t->out_len, p, n);
  t->out = grown;
  t->out_len += n;
  return 0;
}

static void execute(napi_env env, void *data) {
  (void)env;
  transact_t *t = data;
  if (t->req_len < sizeof(struct nlmsghdr)) { t->err = EINVAL; t->failed_call = "rtnlTransact"; return; }
  uint32_t seq = ((const struct nlmsghdr *)t->req)->nlmsg_seq;
  if (send(t->fd, t->req, t->req_len, 0) < 0) { t->err = errno; t->failed_call = "send"; return; }
  char *buf = malloc(RECV_BUF);
  if (buf == NULL) { t->err = ENOMEM; t->failed_call = "malloc"; return; }
  int done = 0;
  while (!done) {
    ssize_t n = recv(t->fd, buf, RECV_BUF, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      t->err = errno == EAGAIN ? ETIMEDOUT : errno;
      t->failed_call = "recv";
      break;
    }
    int left = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      /* Anything else on the socket (a late answer to an earlier request) is not ours. */
      if (h->nlmsg_seq != seq) continue;
      if (append(t, (const char *)h, h->nlmsg_len) != 0) { t->err = ENOMEM; t->failed_call = "realloc"; done = 1; break; }
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) done = 1;
    }
  }
  free(buf);
}

static void complete(napi_env env, napi_status status, void *data) {
  transact_t *t = data;
  napi_value cb, global, argv[2];
  napi_get_reference_value(env, t->callback, &cb);
  napi_get_global(env, &global);
  if (status != napi_ok || t->err != 0) {
    int err = status != napi_ok ? ECANCELED : t->err;
    napi_value msg, code;
    char text[160];
    snprintf(text, sizeof text, "%s: %s", t->failed_call ? t->failed_call : "rtnlTransact", strerror(err));
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_int32(env, err, &code);
    napi_create_error(env, NULL, msg, &argv[0]);
    napi_set_named_property(env, argv[0], "errno", code);
    napi_get_undefined(env, &argv[1]);
  } else {
    void *copy;
    napi_get_null(env, &argv[0]);
    napi_create_buffer_copy(env, t->out_len, t->out_len ? t->out : "", &copy, &argv[1]);
  }
  napi_call_function(env, global, cb, 2, argv, NULL);
  napi_delete_reference(env, t->callback);
  napi_delete_reference(env, t->request_ref);
  napi_delete_async_work(env, t->work);
  free(t->out);
  free(t);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return weft_throw_errno(env, errno, "socket");
  struct timeval tv = { .tv_sec = 10, .tv_usec = 0 };
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    int err = errno;
    close(fd);
    return weft_throw_errno(env, err, "setsockopt");
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "rtnlClose(fd) takes an integer");
    return NULL;
  }
  close(fd);
  return NULL;
}

static napi_value js_transact(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1;
  bool is_buffer = false;
  napi_valuetype cb_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_typeof(env, argv[2], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "rtnlTransact(fd, request: Buffer, callback) takes an integer, a Buffer and a function");
    return NULL;
  }
  transact_t *t = calloc(1, sizeof *t);
  if (t == NULL) return weft_throw_errno(env, ENOMEM, "calloc");
  t->fd = fd;
  void *data;
  napi_get_buffer_info(env, argv[1], &data, &t->req_len);
  t->req = data;
  /* The request's bytes are read on the pool thread: keep the Buffer alive until then. */
  napi_create_reference(env, argv[1], 1, &t->request_ref);
  napi_create_reference(env, argv[2], 1, &t->callback);
  napi_value name;
  napi_create_string_utf8(env, "weft:rtnlTransact", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, t, &t->work) != napi_ok || napi_queue_async_work(env, t->work) != napi_ok) {
    napi_delete_reference(env, t->callback);
    napi_delete_reference(env, t->request_ref);
    free(t);
    napi_throw_error(env, NULL, "rtnlTransact: cannot queue the work");
    return NULL;
  }
  return NULL;
}

void weft_register_rtnl(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "rtnlOpen", NAPI_AUTO_LENGTH, js_open, NULL, &fn);
  napi_set_named_property(env, exports, "rtnlOpen", fn);
  napi_create_function(env, "rtnlClose", NAPI_AUTO_LENGTH, js_close, NULL, &fn);
  napi_set_named_property(env, exports, "rtnlClose", fn);
  napi_create_function(env, "rtnlTransact", NAPI_AUTO_LENGTH, js_transact, NULL, &fn);
  napi_set_named_property(env, exports, "rtnlTransact", fn);
}
