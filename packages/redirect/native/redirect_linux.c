// Socket primitives for transparent capture that Node cannot do itself: options that must be
// set before bind(), SO_ORIGINAL_DST, SO_MARK and creating sockets inside another network
// namespace. Every call is synchronous, takes and returns plain values (fds, numbers,
// objects) and never keeps state between calls. Kernel failures are thrown as Error objects
// carrying `nativeErrno` (positive errno), `syscall` and `option`; the JS layer turns them
// into Node-shaped system errors.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/netfilter_ipv4.h>

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define CHECK(call)                                                                    \
  do {                                                                                 \
    if ((call) != napi_ok) {                                                           \
      fprintf(stderr, "@mesh/redirect: Node-API call failed: %s (%s:%d)\n", #call,     \
              __FILE__, __LINE__);                                                     \
      abort();                                                                         \
    }                                                                                  \
  } while (0)

// ---------------------------------------------------------------------------------------
// Errors

static napi_value throw_sys(napi_env env, int err, const char* syscall, const char* option) {
  char msg[256];
  if (option != NULL && option[0] != '\0') {
    snprintf(msg, sizeof msg, "%s(%s): %s", syscall, option, strerror(err));
  } else {
    snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  }
  napi_value message, error, v;
  CHECK(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message));
  CHECK(napi_create_error(env, NULL, message, &error));
  CHECK(napi_create_int32(env, err, &v));
  CHECK(napi_set_named_property(env, error, "nativeErrno", v));
  CHECK(napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, error, "syscall", v));
  if (option != NULL) {
    CHECK(napi_create_string_utf8(env, option, NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, error, "option", v));
  }
  CHECK(napi_throw(env, error));
  return NULL;
}

static napi_value throw_type(napi_env env, const char* msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
  return NULL;
}

// ---------------------------------------------------------------------------------------
// Argument helpers. The JS layer validates everything first; these only guard memory safety.

static bool has_prop(napi_env env, napi_value obj, const char* name, napi_value* out) {
  bool has = false;
  CHECK(napi_has_named_property(env, obj, name, &has));
  if (!has) return false;
  CHECK(napi_get_named_property(env, obj, name, out));
  napi_valuetype t;
  CHECK(napi_typeof(env, *out, &t));
  return t != napi_undefined && t != napi_null;
}

static bool get_bool(napi_env env, napi_value obj, const char* name) {
  napi_value v;
  if (!has_prop(env, obj, name, &v)) return false;
  bool b = false;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return false;
  return b;
}

static int64_t get_int(napi_env env, napi_value obj, const char* name, int64_t dflt) {
  napi_value v;
  if (!has_prop(env, obj, name, &v)) return dflt;
  int64_t n = dflt;
  if (napi_get_value_int64(env, v, &n) != napi_ok) return dflt;
  return n;
}

// Copies a string property into buf; returns false when absent.
static bool get_str(napi_env env, napi_value obj, const char* name, char* buf, size_t len) {
  napi_value v;
  if (!has_prop(env, obj, name, &v)) return false;
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, len, &n) != napi_ok) return false;
  return true;
}

static bool arg_int(napi_env env, napi_value v, int64_t* out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

// Reads the single fd argument of a call; false (with a TypeError pending) when it is not one.
static bool fd_arg(napi_env env, napi_callback_info info, int* fd) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t n;
  if (argc < 1 || !arg_int(env, argv[0], &n)) {
    throw_type(env, "fd must be a number");
    return false;
  }
  *fd = (int)n;
  return true;
}

static bool make_sockaddr(int family, const char* address, int port, struct sockaddr_storage* ss,
                          socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  if (family == 4) {
    struct sockaddr_in* sin = (struct sockaddr_in*)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &sin->sin_addr) != 1) return false;
    *len = sizeof *sin;
    return true;
  }
  struct sockaddr_in6* sin6 = (struct sockaddr_in6*)ss;
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons((uint16_t)port);
  if (inet_pton(AF_INET6, address, &sin6->sin6_addr) != 1) return false;
  *len = sizeof *sin6;
  return true;
}

// {address, port, family} like Node's socket.address(); v4-mapped IPv6 becomes plain IPv4.
static napi_value sockaddr_to_js(napi_env env, const struct sockaddr_storage* ss) {
  char text[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  const char* family = "IPv4";
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* sin = (const struct sockaddr_in*)ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    port = ntohs(sin->sin_port);
  } else {
    const struct sockaddr_in6* sin6 = (const struct sockaddr_in6*)ss;
    port = ntohs(sin6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], text, sizeof text);
    } else {
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
      family = "IPv6";
    }
  }
  napi_value obj, v;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "address", v));
  CHECK(napi_create_int32(env, port, &v));
  CHECK(napi_set_named_property(env, obj, "port", v));
  CHECK(napi_create_string_utf8(env, family, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "family", v));
  return obj;
}

// ---------------------------------------------------------------------------------------
// Network namespaces. setns(CLONE_NEWNET) switches only the calling thread; we switch, do
// the work and switch back inside one synchronous native call so no JavaScript (and no
// libuv callback) ever runs while this thread is in the other namespace.

typedef struct {
  int home;    // this thread's own netns, -1 when no switch happened
  int target;  // fd of the namespace we entered
  bool close_target;
} netns_guard;

// Resolves `netns` (undefined, a path string or an fd number) and enters it.
// Returns 0 or a positive errno; *syscall names the call that failed.
static int netns_enter(napi_env env, napi_value opts, netns_guard* g, const char** syscall) {
  g->home = -1;
  g->target = -1;
  g->close_target = false;
  napi_value v;
  if (!has_prop(env, opts, "netns", &v)) return 0;
  napi_valuetype t;
  CHECK(napi_typeof(env, v, &t));
  if (t == napi_number) {
    int64_t fd = -1;
    CHECK(napi_get_value_int64(env, v, &fd));
    g->target = (int)fd;
  } else {
    char path[PATH_MAX];
    size_t n = 0;
    if (napi_get_value_string_utf8(env, v, path, sizeof path, &n) != napi_ok) return EINVAL;
    g->target = open(path, O_RDONLY | O_CLOEXEC);
    if (g->target < 0) {
      *syscall = "open";
      return errno;
    }
    g->close_target = true;
  }
  g->home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (g->home < 0) {
    int err = errno;
    if (g->close_target) close(g->target);
    *syscall = "open";
    return err;
  }
  if (setns(g->target, CLONE_NEWNET) != 0) {
    int err = errno;
    close(g->home);
    g->home = -1;
    if (g->close_target) close(g->target);
    *syscall = "setns";
    return err;
  }
  return 0;
}

static void netns_leave(netns_guard* g) {
  if (g->home < 0) return;
  if (setns(g->home, CLONE_NEWNET) != 0) {
    // Continuing would run the event loop in a foreign namespace: every later socket would
    // silently land there. There is no safe recovery.
    fprintf(stderr, "@mesh/redirect: setns back to the original network namespace failed: %s\n",
            strerror(errno));
    abort();
  }
  close(g->home);
  if (g->close_target) close(g->target);
  g->home = -1;
}

// ---------------------------------------------------------------------------------------
// Socket creation

typedef struct {
  int family;  // 4 or 6
  char address[INET6_ADDRSTRLEN + 1];
  bool has_address;
  int port;
  int backlog;
  bool transparent, freebind, reuse_port, reuse_addr, v6_only;
  int64_t mark;  // -1 = leave unset
  bool listen;
} sock_spec;

typedef struct {
  int err;
  const char* syscall;
  const char* option;
} sock_failure;

static int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : errno;
}

// Returns the fd, or -1 with *f filled in.
static int build_socket(const sock_spec* s, sock_failure* f) {
  int af = s->family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    f->err = errno;
    f->syscall = "socket";
    f->option = NULL;
    return -1;
  }
#define OPT(level, name, value, label)                 \
  do {                                                 \
    int e = set_int_opt(fd, level, name, value);       \
    if (e != 0) {                                      \
      f->err = e;                                      \
      f->syscall = "setsockopt";                       \
      f->option = label;                               \
      close(fd);                                       \
      return -1;                                       \
    }                                                  \
  } while (0)
  if (s->reuse_addr) OPT(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
  if (s->reuse_port) OPT(SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
  if (af == AF_INET6) OPT(SOL_IPV6, IPV6_V6ONLY, s->v6_only ? 1 : 0, "IPV6_V6ONLY");
  if (s->transparent) {
    if (af == AF_INET6) {
      OPT(SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
    } else {
      OPT(SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
    }
  }
  if (s->freebind) {
    if (af == AF_INET6) {
      OPT(SOL_IPV6, IPV6_FREEBIND, 1, "IPV6_FREEBIND");
    } else {
      OPT(SOL_IP, IP_FREEBIND, 1, "IP_FREEBIND");
    }
  }
  if (s->mark >= 0) OPT(SOL_SOCKET, SO_MARK, (int)(uint32_t)s->mark, "SO_MARK");
  if (!s->listen && s->has_address && s->port == 0) {
    // Outbound: let connect() pick the port so many spoofed sources share the 4-tuple space.
    OPT(SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1, "IP_BIND_ADDRESS_NO_PORT");
  }
#undef OPT
  if (s->has_address || s->listen) {
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const char* addr = s->has_address ? s->address : (af == AF_INET6 ? "::" : "0.0.0.0");
    make_sockaddr(s->family, addr, s->port, &ss, &len);
    if (bind(fd, (struct sockaddr*)&ss, len) != 0) {
      f->err = errno;
      f->syscall = "bind";
      f->option = NULL;
      close(fd);
      return -1;
    }
  }
  if (s->listen && listen(fd, s->backlog) != 0) {
    f->err = errno;
    f->syscall = "listen";
    f->option = NULL;
    close(fd);
    return -1;
  }
  return fd;
}

static napi_value create_socket_common(napi_env env, napi_callback_info info, bool is_listen) {
  size_t argc = 1;
  napi_value opts;
  CHECK(napi_get_cb_info(env, info, &argc, &opts, NULL, NULL));
  if (argc < 1) return throw_type(env, "options object required");

  sock_spec s;
  memset(&s, 0, sizeof s);
  s.listen = is_listen;
  s.family = (int)get_int(env, opts, "family", 4);
  if (s.family != 4 && s.family != 6) return throw_type(env, "family must be 4 or 6");
  s.has_address = get_str(env, opts, "address", s.address, sizeof s.address);
  if (s.has_address) {
    struct sockaddr_storage probe;
    socklen_t len;
    if (!make_sockaddr(s.family, s.address, 0, &probe, &len)) {
      return throw_type(env, "address is not an IP address of the given family");
    }
  }
  s.port = (int)get_int(env, opts, "port", 0);
  if (s.port < 0 || s.port > 65535) return throw_type(env, "port out of range");
  s.backlog = (int)get_int(env, opts, "backlog", 511);
  s.transparent = get_bool(env, opts, "transparent");
  s.freebind = get_bool(env, opts, "freebind");
  s.reuse_port = get_bool(env, opts, "reusePort");
  s.reuse_addr = get_bool(env, opts, "reuseAddr");
  s.v6_only = get_bool(env, opts, "ipv6Only");
  s.mark = get_int(env, opts, "mark", -1);

  netns_guard g;
  const char* ns_syscall = "setns";
  int err = netns_enter(env, opts, &g, &ns_syscall);
  if (err != 0) return throw_sys(env, err, ns_syscall, "CLONE_NEWNET");
  sock_failure f = {0, NULL, NULL};
  int fd = build_socket(&s, &f);
  netns_leave(&g);
  if (fd < 0) return throw_sys(env, f.err, f.syscall, f.option);

  napi_value out;
  CHECK(napi_create_int32(env, fd, &out));
  return out;
}

static napi_value CreateListenSocket(napi_env env, napi_callback_info info) {
  return create_socket_common(env, info, true);
}

static napi_value CreateSocket(napi_env env, napi_callback_info info) {
  return create_socket_common(env, info, false);
}

// originalDestination(fd) -> {address, port, family, source: 'conntrack' | 'local'}
static napi_value OriginalDestination(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_arg(env, info, &fd)) return NULL;

  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  memset(&local, 0, sizeof local);
  if (getsockname(fd, (struct sockaddr*)&local, &len) != 0) {
    return throw_sys(env, errno, "getsockname", NULL);
  }
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) {
    return throw_sys(env, EAFNOSUPPORT, "getsockname", NULL);
  }

  struct sockaddr_storage orig;
  memset(&orig, 0, sizeof orig);
  int rc;
  const char* option;
  bool v4 = local.ss_family == AF_INET ||
            IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6*)&local)->sin6_addr);
  if (v4) {
    // A dual-stack socket accepting IPv4 still has an IPv4 conntrack entry.
    socklen_t olen = sizeof(struct sockaddr_in);
    option = "SO_ORIGINAL_DST";
    rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &olen);
  } else {
    socklen_t olen = sizeof(struct sockaddr_in6);
    option = "IP6T_SO_ORIGINAL_DST";
    rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &orig, &olen);
  }
  const char* source = "conntrack";
  if (rc != 0) {
    int err = errno;
    // ENOENT: no conntrack entry (not NATed, or TPROXY, where the local address already is
    // the original destination). ENOPROTOOPT: conntrack is not loaded at all.
    if (err != ENOENT && err != ENOPROTOOPT) return throw_sys(env, err, "getsockopt", option);
    orig = local;
    source = "local";
  }
  napi_value obj = sockaddr_to_js(env, &orig), v;
  CHECK(napi_create_string_utf8(env, source, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "source", v));
  return obj;
}

static napi_value SetMark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd, mark;
  if (argc < 2 || !arg_int(env, argv[0], &fd) || !arg_int(env, argv[1], &mark)) {
    return throw_type(env, "setMark(fd, mark)");
  }
  int e = set_int_opt(fd, SOL_SOCKET, SO_MARK, (int)(uint32_t)mark);
  if (e != 0) return throw_sys(env, e, "setsockopt", "SO_MARK");
  return NULL;
}

static napi_value GetMark(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_arg(env, info, &fd)) return NULL;
  uint32_t mark = 0;
  socklen_t len = sizeof mark;
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len) != 0) {
    return throw_sys(env, errno, "getsockopt", "SO_MARK");
  }
  napi_value out;
  CHECK(napi_create_uint32(env, mark, &out));
  return out;
}

// Moves the calling thread into a network namespace for good. Only meant for a worker thread
// that is dedicated to that namespace (the test kit's `run`).
static napi_value EnterNetns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value opts;
  CHECK(napi_get_cb_info(env, info, &argc, &opts, NULL, NULL));
  if (argc < 1) return throw_type(env, "options object required");
  netns_guard g;
  const char* syscall = "setns";
  int err = netns_enter(env, opts, &g, &syscall);
  if (err != 0) return throw_sys(env, err, syscall, "CLONE_NEWNET");
  if (g.home >= 0) close(g.home);
  if (g.close_target) close(g.target);
  return NULL;
}

// Inode of the calling thread's network namespace (or of the namespace at `netns`), to check
// which namespace something runs in.
static napi_value NetnsId(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  char path[PATH_MAX] = "/proc/thread-self/ns/net";
  size_t n;
  if (argc >= 1) {
    napi_valuetype t;
    CHECK(napi_typeof(env, arg, &t));
    if (t == napi_string) CHECK(napi_get_value_string_utf8(env, arg, path, sizeof path, &n));
  }
  struct stat st;
  if (stat(path, &st) != 0) return throw_sys(env, errno, "stat", NULL);
  napi_value out;
  CHECK(napi_create_double(env, (double)st.st_ino, &out));
  return out;
}

// What this process may do: 0 for allowed, else the errno the attempt failed with.
static napi_value Probe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj, v;
  CHECK(napi_create_object(env, &obj));
  struct {
    const char* name;
    int af, level, opt;
  } checks[] = {
      {"transparent", AF_INET, SOL_IP, IP_TRANSPARENT},
      {"transparent6", AF_INET6, SOL_IPV6, IPV6_TRANSPARENT},
      {"freebind", AF_INET, SOL_IP, IP_FREEBIND},
      {"reusePort", AF_INET, SOL_SOCKET, SO_REUSEPORT},
      {"mark", AF_INET, SOL_SOCKET, SO_MARK},
  };
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    int result;
    int fd = socket(checks[i].af, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      result = errno;
    } else {
      result = set_int_opt(fd, checks[i].level, checks[i].opt, checks[i].opt == SO_MARK ? 0x539 : 1);
      close(fd);
    }
    CHECK(napi_create_int32(env, result, &v));
    CHECK(napi_set_named_property(env, obj, checks[i].name, v));
  }
  // setns into our own namespace: needs the same CAP_SYS_ADMIN as any other, changes nothing.
  int result = 0;
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    result = errno;
  } else {
    if (setns(self, CLONE_NEWNET) != 0) result = errno;
    close(self);
  }
  CHECK(napi_create_int32(env, result, &v));
  CHECK(napi_set_named_property(env, obj, "setns", v));
  return obj;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"createListenSocket", NULL, CreateListenSocket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"createSocket", NULL, CreateSocket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"originalDestination", NULL, OriginalDestination, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setMark", NULL, SetMark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getMark", NULL, GetMark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"enterNetns", NULL, EnterNetns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netnsId", NULL, NetnsId, NULL, NULL, NULL, napi_enumerable, NULL},
      {"probe", NULL, Probe, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  napi_value t;
  CHECK(napi_get_boolean(env, true, &t));
  CHECK(napi_set_named_property(env, exports, "supported", t));
  return exports;
}
