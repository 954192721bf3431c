/*
 * progress.c -- futures.progress(it, [opts]) and ex:map(..., {progress =
 * true}): a progress bar over a map iterator, an as_completed iterator or
 * an array of futures, as tqdm draws one.
 *
 * It counts completions, not consumption: every future it watches gets a
 * done hook that adds the future's weight (its calls, for a map chunk) to
 * an atomic count, on whichever thread ends it, and posts one redraw item
 * to the owning state's inbox if none is waiting. The state runs that item
 * whenever it enters the runtime -- while the consumer is blocked on an
 * earlier item too -- and redraws if enough time passed: at most 10 times
 * a second on a terminal (the line rewritten in place, as wide as the
 * terminal), a plain line every `interval` seconds (default 5) otherwise.
 * The last draw shows 100% and the total time.
 *
 * The shared part (`meter`) is reference counted: the Progress object
 * holds one reference, each hook one and a posted item one, so a hook
 * that fires after the object was collected finds its count still there.
 * Its only lock-free fields are the two atomics; the rest is the owning
 * state's.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lfb.h"

#define LFB_PROGRESS "Progress"
static const char METERS[] = "luafutures.progress"; /* meter -> object, weak */

typedef struct meter {
  lf_item item;       /* the redraw, posted while `posted` */
  _Atomic int refs;
  _Atomic long done;  /* calls or futures completed */
  _Atomic int posted;
  lf_inbox *inbox;
} meter;

typedef struct hookarg {
  meter *m;
  size_t weight;
} hookarg;

/* The object's own state: only its state's thread reads it. */
typedef struct progress {
  meter *m;
  long total;
  double start, last;   /* last: when it last drew */
  double interval;
  int tty, drawn, finished;
  long drawn_done;      /* the count of the last draw */
  int fd;               /* the terminal's, for its width; -1 */
  long index;           /* array mode: the next element */
} progress;

static void meter_unref(meter *m) {
  if (atomic_fetch_sub(&m->refs, 1) == 1) {
    lf_inbox_unref(m->inbox);
    free(m);
  }
}

static void draw_due(lua_State *L, meter *m);

static void redraw_run(lf_item *it, void *ctx) {
  meter *m = (meter *)it;
  atomic_store(&m->posted, 0);
  if (ctx) draw_due(ctx, m);
  meter_unref(m);
}

static void done_hook(void *arg, lf_future *f) {
  hookarg *h = arg;
  meter *m = h->m;
  atomic_fetch_add(&m->done, (long)h->weight);
  free(h);
  if (!atomic_exchange(&m->posted, 1)) {
    atomic_fetch_add(&m->refs, 1);
    lf_inbox_post(m->inbox, &m->item);
  }
  meter_unref(m);
}

static void watch(void *ud, lf_future *f, size_t weight) {
  meter *m = ud;
  hookarg *h = malloc(sizeof *h);
  if (h == NULL) return; /* the bar misses it: it is not worth an error */
  h->m = m;
  h->weight = weight;
  atomic_fetch_add(&m->refs, 1);
  if (lf_future_add_hook(f, done_hook, h) != 0) done_hook(h, f);
}

/* ---- drawing -------------------------------------------------------------- */

static void clock_text(char *buf, size_t n, double s) {
  if (s < 0 || s > 1e7) {
    snprintf(buf, n, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static int term_width(progress *p) {
  struct winsize ws;
  if (p->fd >= 0 && ioctl(p->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
    return ws.ws_col;
  return 80;
}

/* The line of the bar now: "desc: 42%|####   | 42/100 [00:03<00:04,
 * 12.5 it/s]", the bar only on a terminal. */
static long format(progress *p, const char *desc, char *out, size_t n) {
  long done = atomic_load(&p->m->done), total = p->total;
  if (total >= 0 && done > total) done = total;
  double el = lf_now() - p->start, rate = el > 0 ? done / el : 0;
  char els[32], eta[32], rates[32], head[160];
  clock_text(els, sizeof els, el);
  clock_text(eta, sizeof eta, rate > 0 && total >= 0 ? (total - done) / rate : -1);
  if (rate > 0) snprintf(rates, sizeof rates, "%.2f it/s", rate);
  else snprintf(rates, sizeof rates, "? it/s");
  int pct = total > 0 ? (int)(100.0 * done / total) : total == 0 ? 100 : 0;
  snprintf(head, sizeof head, "%s%s%3d%%", desc ? desc : "", desc ? ": " : "", pct);
  char tail[160];
  snprintf(tail, sizeof tail, " %ld/%ld [%s<%s, %s]", done, total, els, eta, rates);
  if (!p->tty) {
    snprintf(out, n, "%s%s\n", head, tail);
    return done;
  }
  int width = term_width(p) - (int)strlen(head) - (int)strlen(tail) - 3;
  if (width > 60) width = 60;
  if (width < 0) width = 0;
  char bar[64];
  int fill = total > 0 ? (int)((double)width * done / total) : width;
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : ' ';
  bar[width] = '\0';
  snprintf(out, n, "\r%s|%s|%s\x1b[K", head, bar, tail);
  return done;
}

/* Writes the line with opts.file:write (the object's user value 1 is
 * {file, desc}); an error there is the file's, so it is reported, once. */
static void draw(lua_State *L, int obj, progress *p) {
  int top = lua_gettop(L);
  lua_getiuservalue(L, obj, 1); /* opts */
  if (lua_getfield(L, -1, "file") != LUA_TNIL && lua_toboolean(L, -1)) {
    lua_getfield(L, top + 1, "desc");
    char line[512];
    p->drawn_done = format(p, lua_tostring(L, -1), line, sizeof line);
    lua_pop(L, 1);
    if (lua_getfield(L, top + 2, "write") != LUA_TNIL) { /* opts file write */
      lua_pushvalue(L, top + 2);
      lua_pushstring(L, line);
      if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1);
    }
    lua_settop(L, top + 2);
    if (lua_getfield(L, top + 2, "flush") != LUA_TNIL) {
      lua_pushvalue(L, top + 2);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  p->drawn = 1;
  p->last = lf_now();
}

static void draw_due(lua_State *L, meter *m) {
  lfb_push_weak(L, METERS, "v");
  if (lua_rawgetp(L, -1, m) == LUA_TUSERDATA) {
    progress *p = lua_touserdata(L, -1);
    double gap = p->tty ? 0.1 : p->interval;
    if (!p->finished && (!p->drawn || lf_now() - p->last >= gap))
      draw(L, lua_gettop(L), p);
  }
  lua_pop(L, 2);
}

/* "\n" with opts.file:write, for the terminal's line. */
static void end_line(lua_State *L, int obj) {
  int top = lua_gettop(L);
  lua_getiuservalue(L, obj, 1);
  if (lua_getfield(L, -1, "file") != LUA_TNIL && lua_toboolean(L, -1) &&
      lua_getfield(L, top + 2, "write") != LUA_TNIL) {
    lua_pushvalue(L, top + 2);
    lua_pushliteral(L, "\n");
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
  lua_settop(L, top);
}

/* The last draw: 100%, the total time, and the terminal's line ended. */
static void finish(lua_State *L, int obj, progress *p) {
  if (p->finished) return;
  if (p->total >= 0) atomic_store(&p->m->done, p->total);
  /* A plain line that said 100% already is not said twice. */
  if (p->tty || p->drawn_done != atomic_load(&p->m->done)) draw(L, obj, p);
  p->finished = 1;
  if (!p->tty) return;
  end_line(L, obj);
}

/* ---- the object and its iterator ------------------------------------------ */

static int pr_gc(lua_State *L) {
  progress *p = luaL_checkudata(L, 1, LFB_PROGRESS);
  if (p->m) meter_unref(p->m);
  p->m = NULL;
  return 0;
}

/* Breaking out of the loop ends the terminal's line. */
static int pr_close(lua_State *L) {
  progress *p = luaL_checkudata(L, 1, LFB_PROGRESS);
  if (p->m && p->drawn && p->tty && !p->finished) {
    p->finished = 1;
    end_line(L, 1);
  }
  return 0;
}

/* The loop's step: upvalue 1 the object (user value 2 the wrapped
 * iterator or array). Yields what the wrapped iterator yields, or i, f. */
static int pr_next(lua_State *L) {
  int obj = lua_upvalueindex(1);
  progress *p = lua_touserdata(L, obj);
  lua_settop(L, 0);
  if (p->m == NULL || p->finished) return 0;
  lua_getiuservalue(L, obj, 2); /* wrapped */
  if (lua_istable(L, 1)) {
    lua_Integer i = ++p->index;
    if (lua_rawgeti(L, 1, i) == LUA_TNIL) {
      finish(L, obj, p);
      return 0;
    }
    lua_pushinteger(L, i);
    lua_insert(L, -2);
    if (p->tty) draw_due(L, p->m);
    return 2;
  }
  lua_call(L, 0, LUA_MULTRET);
  if (lua_gettop(L) == 0 || lua_isnil(L, 1)) finish(L, obj, p);
  else if (p->tty) draw_due(L, p->m); /* what the rate limit held back */
  return lua_gettop(L);
}

static int file_is_tty(lua_State *L, int idx, int *fd) {
  luaL_Stream *s = luaL_testudata(L, idx, LUA_FILEHANDLE);
  *fd = -1;
  if (s == NULL || s->closef == NULL || s->f == NULL) return 0;
  *fd = fileno(s->f);
  return *fd >= 0 && isatty(*fd);
}

/* Reads opts (at 2) into a new table {file, desc} (pushed) and p. */
static void read_opts(lua_State *L, progress *p) {
  static const char *const known[] = {"total", "desc", "file", "interval", NULL};
  lua_createtable(L, 0, 2);
  int t = lua_gettop(L);
  p->interval = 5;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lfb_check_options(L, 2, known);
    if (lua_getfield(L, 2, "total") != LUA_TNIL) {
      lua_Integer n;
      luaL_argcheck(L, lfb_getint(L, -1, &n) && n >= 0, 2,
                    "'total' must be a non-negative integer");
      p->total = (long)n;
    }
    if (lua_getfield(L, 2, "desc") != LUA_TNIL) lfb_optstring(L, 2, "desc");
    lua_setfield(L, t, "desc");
    if (lua_getfield(L, 2, "interval") != LUA_TNIL) {
      luaL_argcheck(L, lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) >= 0,
                    2, "'interval' must be a non-negative number");
      p->interval = lua_tonumber(L, -1);
    }
    lua_pop(L, 2);
    lua_getfield(L, 2, "file");
  } else {
    lua_pushnil(L);
  }
  if (lua_isnil(L, -1)) { /* the default: io.stderr */
    lua_pop(L, 1);
    lua_getglobal(L, "io");
    if (lua_istable(L, -1)) lua_getfield(L, -1, "stderr");
    else lua_pushnil(L);
    lua_remove(L, -2);
  }
  int ft = lua_type(L, -1);
  luaL_argcheck(L, ft == LUA_TNIL || (ft == LUA_TBOOLEAN && !lua_toboolean(L, -1)) ||
                    ft == LUA_TUSERDATA || ft == LUA_TTABLE, 2,
                "'file' must be a file, an object with a write method, or false");
  p->tty = file_is_tty(L, -1, &p->fd);
  lua_setfield(L, t, "file");
}

/* Watches what is at 1, or raises: the wrapped thing's futures each get a
 * hook, and p->total is its size unless opts gave one. */
static void watch_input(lua_State *L, progress *p) {
  long done = 0, n = lfb_map_track(L, 1, watch, p->m, &done);
  if (n < 0) n = lfb_as_completed_track(L, 1, watch, p->m, &done);
  if (n < 0 && lua_type(L, 1) == LUA_TTABLE) {
    n = (long)lua_rawlen(L, 1);
    for (long i = 1; i <= n; i++) {
      lua_rawgeti(L, 1, i);
      lfb_future *fu = lfb_future_test(L, -1);
      if (fu == NULL || fu->f == NULL)
        luaL_argerror(L, 1, lua_pushfstring(L, "Future expected at index %d, got %s",
                                            (int)i, lfb_typename(L, -1)));
      lua_pop(L, 1);
    }
    for (long i = 1; i <= n; i++) {
      lua_rawgeti(L, 1, i);
      watch(p->m, ((lfb_future *)lua_touserdata(L, -1))->f, 1);
      lua_pop(L, 1);
    }
  }
  if (n < 0)
    luaL_typeerror(L, 1, "map iterator, as_completed iterator or array of futures");
  atomic_fetch_add(&p->m->done, done);
  if (p->total < 0) p->total = n;
}

int lfb_progress(lua_State *L) {
  lfb_ctx *ctx = lfb_ctx_push(L);
  lua_pop(L, 1);
  progress *p = lua_newuserdatauv(L, sizeof *p, 2); /* it opts p */
  memset(p, 0, sizeof *p);
  p->total = -1;
  p->fd = -1;
  luaL_setmetatable(L, LFB_PROGRESS);
  int obj = lua_gettop(L);
  read_opts(L, p);
  lua_setiuservalue(L, obj, 1);
  if (ctx->inbox == NULL) return luaL_error(L, "the Lua state is closing");
  meter *m = calloc(1, sizeof *m);
  if (m == NULL) return luaL_error(L, "not enough memory");
  atomic_init(&m->refs, 1);
  m->item.run = redraw_run;
  m->inbox = ctx->inbox;
  lf_inbox_ref(m->inbox);
  p->m = m;
  p->start = p->last = lf_now();
  lfb_push_weak(L, METERS, "v");
  lua_pushvalue(L, obj);
  lua_rawsetp(L, -2, m);
  lua_pop(L, 1);
  watch_input(L, p);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, obj, 2);
  draw(L, obj, p); /* 0/total at once, as tqdm */
  lua_pushvalue(L, obj);
  lua_pushcclosure(L, pr_next, 1);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, obj); /* to-be-closed: a break ends the line */
  return 4;
}

static int m_progress(lua_State *L) {
  lua_settop(L, 2);
  return lfb_progress(L);
}

static const luaL_Reg meta[] = {
    {"__gc", pr_gc},
    {"__close", pr_close},
    {NULL, NULL},
};

static const luaL_Reg no_methods[] = {{NULL, NULL}};

static const luaL_Reg funcs[] = {
    {"progress", m_progress},
    {NULL, NULL},
};

void lfb_open_progress(lua_State *L) {
  lfb_newclass(L, LFB_PROGRESS, meta, no_methods);
  lfb_setfuncs(L, funcs);
}
