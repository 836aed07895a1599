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
 *   rtnlTransact([[fd, request], ...], callback(err, replies[]))
 *                          for each request in order (a whole message with
 *                          its header, on its socket): send it, receive
 *                          until the NLMSG_ERROR (the ACK or the error)
 *                          answering its sequence number; its replies are
 *                          every message with that number. The first request
 *                          the kernel refuses ends the sequence. Requests on
 *                          one socket never run in two calls at a time.
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
  int fd;
  const char *req;
  size_t req_len;
  char *out;
  size_t out_len;
} step_t;

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref requests_ref;
  size_t nsteps;
  size_t steps_done;
  step_t *steps;
  int err;
  const char *failed_call;
} transact_t;

static int append(step_t *st, const char *p, size_t n) {
  char *grown = realloc(st->out, st->out_len + n);
  if (grown == NULL) return ENOMEM;
  memcpy(grown + st->out_len, p, n);
  st->out = grown;
  st->out_len += n;
  return 0;
}

/* One request: send, then receive until the NLMSG_ERROR (or NLMSG_DONE) of its sequence number. 1 when the kernel refused it. */
static int run_step(transact_t *t, step_t *st, char *buf) {
  if (st->req_len < sizeof(struct nlmsghdr)) { t->err = EINVAL; t->failed_call = "rtnlTransact"; return 0; }
  uint32_t seq = ((const struct nlmsghdr *)st->req)->nlmsg_seq;
  if (send(st->fd, st->req, st->req_len, 0) < 0) { t->err = errno; t->failed_call = "send"; return 0; }
  for (;;) {
    ssize_t n = recv(st->fd, buf, RECV_BUF, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      t->err = errno == EAGAIN ? ETIMEDOUT : errno;
      t->failed_call = "recv";
      return 0;
    }
    int left = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      /* Anything else on the socket (a late answer to an earlier request) is not ours. */
      if (h->nlmsg_seq != seq) continue;
      if (append(st, (const char *)h, h->nlmsg_len) != 0) { t->err = ENOMEM; t->failed_call = "realloc"; return 0; }
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        return h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && e->error != 0;
      }
    }
  }
}

static void execute(napi_env env, void *data) {
  (void)env;
  transact_t *t = data;
  char *buf = malloc(RECV_BUF);
  if (buf == NULL) { t->err = ENOMEM; t->failed_call = "malloc"; return; }
  /* In order; the first request the kernel refuses ends the sequence (like ip -batch). */
  for (size_t i = 0; i < t->nsteps && t->err == 0; i++) {
    int refused = run_step(t, &t->steps[i], buf);
    if (t->err == 0) t->steps_done = i + 1;
    if (refused) break;
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
  } else {
    napi_get_null(env, &argv[0]);
  }
  /* The replies of the requests that ran, one Buffer each (also on error: what completed). */
  napi_create_array_with_length(env, t->steps_done, &argv[1]);
  for (size_t i = 0; i < t->steps_done; i++) {
    void *copy;
    napi_value b;
    napi_create_buffer_copy(env, t->steps[i].out_len, t->steps[i].out_len ? t->steps[i].out : "", &copy, &b);
    napi_set_element(env, argv[1], (uint32_t)i, b);
  }
  napi_call_function(env, global, cb, 2, argv, NULL);
  napi_delete_reference(env, t->callback);
  napi_delete_reference(env, t->requests_ref);
  napi_delete_async_work(env, t->work);
  for (size_t i = 0; i < t->nsteps; i++) free(t->steps[i].out);
  free(t->steps);
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

/* rtnlTransact([[fd, Buffer], ...], callback(err, replies[])) */
static napi_value js_transact(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool is_array = false;
  uint32_t n = 0;
  napi_valuetype cb_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok || n == 0 ||
      napi_typeof(env, argv[1], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "rtnlTransact(requests: [fd, Buffer][], callback) takes a non-empty array and a function");
    return NULL;
  }
  transact_t *t = calloc(1, sizeof *t);
  step_t *steps = t ? calloc(n, sizeof *steps) : NULL;
  if (steps == NULL) { free(t); return weft_throw_errno(env, ENOMEM, "calloc"); }
  t->steps = steps;
  t->nsteps = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value pair, fdv, bufv;
    bool ok = false, is_buffer = false;
    int32_t fd = -1;
    void *data = NULL;
    size_t len = 0;
    if (napi_get_element(env, argv[0], i, &pair) == napi_ok && napi_get_element(env, pair, 0, &fdv) == napi_ok &&
        napi_get_element(env, pair, 1, &bufv) == napi_ok && napi_get_value_int32(env, fdv, &fd) == napi_ok &&
        napi_is_buffer(env, bufv, &is_buffer) == napi_ok && is_buffer && napi_get_buffer_info(env, bufv, &data, &len) == napi_ok) ok = true;
    if (!ok) {
      free(steps);
      free(t);
      napi_throw_type_error(env, NULL, "rtnlTransact: each request is [fd: number, message: Buffer]");
      return NULL;
    }
    steps[i].fd = fd;
    steps[i].req = data;
    steps[i].req_len = len;
  }
  /* The requests' bytes are read on the pool thread: keep the array (and so the Buffers) alive until then. */
  napi_create_reference(env, argv[0], 1, &t->requests_ref);
  napi_create_reference(env, argv[1], 1, &t->callback);
  napi_value name;
  napi_create_string_utf8(env, "weft:rtnlTransact", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, t, &t->work) != napi_ok || napi_queue_async_work(env, t->work) != napi_ok) {
    napi_delete_reference(env, t->callback);
    napi_delete_reference(env, t->requests_ref);
    free(steps);
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
