/*
 * codec.h -- Lua values to bytes and back (the codec), in four parts, as
 * Lua splits ldump.c and lundump.c:
 *
 *   encode.c   the encoder; blob.c the function blobs it makes (bytecode
 *              dumped once per closure); encbuf.c its buffer, and the
 *              payload that buffer becomes;
 *   decode.c   the decoder, which trusts no byte it reads;
 *   names.c    the index of values reachable from package.loaded, and
 *              resolving such a name in the receiving state;
 *   handles.c  the table of handle classes (Future, ThreadPoolExecutor):
 *              one row per class, so a new handle is one row;
 *   bytecode.c checks a binary chunk from another process before Lua's
 *              loader reads it.
 *
 * A payload is a byte string plus the runtime objects it holds a reference
 * to (lf_payload). A value that stands for a runtime object (a handle, a
 * function blob) is written as an index into those objects, never as an
 * address, so the bytes alone can never name memory: a payload from another
 * process owns no objects, and its decoder refuses such tags outright.
 */
#ifndef LFB_CODEC_H
#define LFB_CODEC_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../runtime/lf.h"

/* Payload flag: the payload holds tables, functions or handles, so the
 * decoded values must be cached to keep their identity. */
#define LFB_HASREFS 1u
/* Payload flag: a result that ends with its run stamp (outcome.c). */
#define LFB_STAMPED 2u
/* Task flag: a trace is on, so the worker times the run in its stamp. */
#define LFB_TRACED 4u

/* Tables and functions nest at most this deep, in both directions: deep
 * enough for a linked list of 10,000 cells; the C recursion it allows
 * (two frames a level, a few hundred bytes) fits the default 8 MiB stack
 * of the threads that encode and decode. */
#define LFB_MAXDEPTH 10000

/* ---- encoder (encode.c) --------------------------------------------------- */

typedef struct lfb_enc {
  char *buf;
  size_t len, cap;
  lf_obj **objs;
  uint32_t nobjs, capobjs;
  int cache;     /* stack index of a slot kept for the stack's shape, or 0 */
  int nrefs;     /* references assigned */
  /* The reference cache: lua_topointer of each table and function seen ->
   * its reference number. The first few in the inline arrays, scanned;
   * beyond, an open-addressing hash of rcap slots (malloc'd). */
  const void **rkeys;
  int *rids;
  uint32_t rcap;
  const void *irkeys[8];
  int irids[8];
  int names;     /* stack index of the names index, or 0 */
  int names_checked; /* package.loaded was checked for changes */
  int depth;
  unsigned flags;
  int handles_ok; /* 0 for another process */
  struct lfb_ctx *ctx; /* a submit's: its last-function cache; or NULL */
  int shared_by_id; /* with !handles_ok: a Shared as T_SHARED_ID */
  const char *what; /* "argument", "result", ... */
  int argno;        /* its number, or 0 */
  char err[320];    /* the message when encoding failed */
  int nomem;        /* ... because memory ran out */
  struct { int kind; int idx; } path[16];
  int npath;
  char ibuf[192];
  lf_obj *iobjs[4];
} lfb_enc;

void lfb_enc_init(lfb_enc *e, lua_State *L);
/* The reference cache (encrefs.c): the reference number of the table or
 * function whose lua_topointer is p, or 0 (then it is recorded as the
 * next one), or -1 when out of memory. The values stay reachable from the
 * stack for the whole encode, so no address is reused while it lives. */
int lfb_enc_ref(lfb_enc *e, const void *p);
void lfb_enc_refs_clear(lfb_enc *e); /* frees the hash, forgets every one */
/* lfb_enc_init with a state pushes two slots (the reference cache and the
 * names index), which lfb_enc_finish* and lfb_enc_free remove again.
 * lfb_enc_value appends the value at `idx`: 0 on success, else -1 with
 * e->err set; it leaves the stack as it was. */
int lfb_enc_value(lfb_enc *e, lua_State *L, int idx);
/* The same for a number, the common map input: no type dispatch, no
 * frame (only memory can fail it). */
int lfb_enc_number(lfb_enc *e, lua_State *L, int idx);
/* Makes room for n more bytes, which the buffer lacks (encbuf.c): 0, or
 * -1 when out of memory. */
int lfb_enc_grow(lfb_enc *e, size_t n);
void lfb_enc_u32(lfb_enc *e, uint32_t v);
void lfb_enc_u8(lfb_enc *e, unsigned v);
void lfb_enc_raw(lfb_enc *e, const void *p, size_t n); /* bytes as they are */
void lfb_enc_str(lfb_enc *e, const char *s, size_t len);
/* Forgets shared references (a new, independent group of values). */
void lfb_enc_reset_refs(lfb_enc *e, lua_State *L);
/* Builds the payload (NULL when out of memory) and releases the encoder;
 * _for builds f's result (in its room when it fits), _task a new pending
 * future holding the payload as its task. */
lf_payload *lfb_enc_finish(lfb_enc *e, lua_State *L);
lf_payload *lfb_enc_finish_for(lfb_enc *e, lua_State *L, lf_future *f);
lf_future *lfb_enc_finish_task(lfb_enc *e, lua_State *L);
void lfb_enc_free(lfb_enc *e, lua_State *L);
/* submit's short way (encfast.c): the task of the function at 2 with the
 * arguments up to `top` as a new pending future, when that function is
 * the context's last and its upvalues and arguments are scalars; else (or
 * out of memory) NULL, and the full way encodes it. For this process. */
lf_future *lfb_enc_task_fast(lua_State *L, struct lfb_ctx *ctx, int top);
/* Pushes the TransferError for a failed encode. */
void lfb_enc_pusherror(lfb_enc *e, lua_State *L);

/* ---- decoder (decode.c) --------------------------------------------------- */

typedef struct lfb_dec {
  const lf_payload *p;
  size_t pos;
  int refs; /* stack index of the refs slot (decode.c), or 0 */
  int nrefs;
  int remote;    /* the bytes came from another process */
  int bad;       /* a read went past the end (or skip met garbage) */
  int depth;     /* tables and functions being decoded */
  size_t budget; /* table slots that may still be pre-sized */
  struct lfb_ctx *ctx; /* the state's context when the caller has it */
} lfb_dec;

/* A decoder of a payload made in this process, or (_remote) of bytes from
 * another one: then every tag that refers to an object (a handle, a
 * function blob) is refused, strings and bytecode are bounded by
 * LUAFUTURES_MAX_MESSAGE and a copied metatable may not have __gc. Both check
 * every byte (see decode.c); lfb_dec_init applies the remote rules to a
 * payload that owns no objects, since such bytes may have come from a
 * worker process whatever the call site. */
void lfb_dec_init(lfb_dec *d, const lf_payload *p);
void lfb_dec_init_remote(lfb_dec *d, const lf_payload *p);
/* Read past the end, u8 gives 0 and u32 UINT32_MAX (a count no payload can
 * satisfy), and the next lfb_dec_value raises. */
uint32_t lfb_dec_u32(lfb_dec *d);
unsigned lfb_dec_u8(lfb_dec *d);
/* A count of values that follow (u32): raises a TransferError when it is
 * past the end or more than the bytes left could hold, so it is also safe
 * to size the Lua stack by. */
uint32_t lfb_dec_count(lfb_dec *d, lua_State *L);
/* Pushes the next value. Raises a TransferError when the payload is
 * corrupt ("corrupt payload (<what>)"), or names a module that cannot be
 * loaded here, or a metatable that is not a table here. The refs table, if
 * created, sits below. */
void lfb_dec_value(lfb_dec *d, lua_State *L);
/* The same for n values, protected: 0 with them pushed, or a LUA_ERR* code
 * with the error pushed instead, for a caller that must free what it holds
 * before it raises (lua_error). */
int lfb_dec_protected(lfb_dec *d, lua_State *L, int n);
/* Skips one value without Lua: 0, or -1 on garbage (then every later read
 * fails). */
int lfb_dec_skip(lfb_dec *d);
/* Lua type name of the next value, without decoding it. */
const char *lfb_dec_peek_type(const lfb_dec *d);

/* A result payload holds outcomes: u32 count, then each: u8 ok, and either
 * u32 n + n values, or the error value + its traceback (string or nil). */
lf_payload *lfb_error_payload(const char *type, const char *message);

/* ---- between the codec's files -------------------------------------------- */

/* Only the codec's own files (which define LFB_CODEC_PARTS) see its wire
 * format and its internal helpers. */
#ifdef LFB_CODEC_PARTS

/* The value tags. T_HANDLE is followed by the handle class's tag (a row of
 * handles.c) and the object's index in the payload's objects. */
enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_SMALLINT, T_FLT, T_STR8, T_STR, T_TABLE,
  T_REF, T_FUNC, T_CFUNC, T_NAMED, T_HANDLE, T_ENV, T_SHARED, T_SHARED_ID
};
/* T_SHARED: a Shared for another process, inline: its 64-bit id, a u32
 * length and its value's bytes (shared.c). T_SHARED_ID: one for a process
 * worker, by reference: its id and the u32 length of its bytes, which the
 * worker asks its pool for the first time (the payload holds the object
 * in this process, so the pool can answer). */
/* Writes the number at idx as its tag and 4 or 8 bytes (at most 9) at
 * out; returns how many. Integers stay integers, small ones in 4 bytes. */
static inline size_t lfb_put_number(lua_State *L, int idx, unsigned char *out) {
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    if (i >= INT32_MIN && i <= INT32_MAX) {
      int32_t v = (int32_t)i;
      out[0] = T_SMALLINT;
      memcpy(out + 1, &v, 4);
      return 5;
    }
    int64_t v = (int64_t)i;
    out[0] = T_INT;
    memcpy(out + 1, &v, 8);
    return 9;
  }
  double d = (double)lua_tonumber(L, idx);
  out[0] = T_FLT;
  memcpy(out + 1, &d, 8);
  return 9;
}

/* What follows a table's contents: no metatable, one by name, a copy. */
enum { M_NONE, M_NAMED, M_COPY };

/* A Lua function's bytecode (debug info kept), shared by reference between
 * the states of one process. */
typedef struct lfb_blob {
  lf_obj obj;
  size_t len;
  int nups;   /* upvalues of the function */
  int allenv; /* all of them are named _ENV (fixed by the prototype) */
  char data[];
} lfb_blob;
/* A state's own function for blob b (blob.c; ctx the state's context or
 * NULL): _get pushes it and returns 1, or returns 0 and pushes nothing;
 * _put keeps the function on top as b's (it stays on top). */
int lfb_loaded_get(lua_State *L, struct lfb_ctx *ctx, lfb_blob *b);
void lfb_loaded_put(lua_State *L, struct lfb_ctx *ctx, lfb_blob *b);
/* Whether o is a blob (the decoder checks the objects it is handed). */
int lfb_blob_is(const lf_obj *o);

/* NULL when the Lua binary chunk is one Lua's loader can read safely, else
 * what is wrong with it (bytecode.c). */
const char *lfb_bytecode_check(const char *code, size_t len);
/* The same check, noting where the parts of the outermost prototype lie
 * (offsets into code): the prototype itself, its upvalue descriptors (3
 * bytes each) and its first nested prototype (0, 0: none). */
typedef struct lfb_spans {
  size_t proto, upvals, child, child_end;
} lfb_spans;
const char *lfb_bytecode_spans(const char *code, size_t len, lfb_spans *sp);
/* lua_dump of the Lua function at idx into a malloc'd buffer the caller
 * frees; NULL when out of memory. */
char *lfb_dump(lua_State *L, int idx, int strip, size_t *len);
/* The blob of the Lua function at idx, from the state's cache or dumped
 * now (blob.c); NULL when out of memory. The cache holds its reference. */
lfb_blob *lfb_function_blob(lua_State *L, int idx);
/* Pushes a function that returns a new closure of b's function, its
 * upvalues fresh and nil, each time it is called (closure.c); -1 and
 * nothing pushed when it cannot, and then the caller loads b itself. */
int lfb_closure_factory(lua_State *L, const lfb_blob *b);

/* Registry keys of the per-state caches (names.c). */
extern const char lfb_NAMES[], lfb_FNCACHE[], lfb_LOADED[], lfb_LASTFN[];
/* Pushes the name of the value at idx ("mod" or "mod\0field") or nil. The
 * slot at stack index `names` holds the names index once fetched (nil
 * before: it is fetched, or built, first; `refresh` rebuilds it). */
void lfb_names_lookup(lua_State *L, int names, int idx, int refresh);
/* Whether package.loaded changed since the index was built. */
int lfb_names_stale(lua_State *L);
/* Pushes package.loaded[mod] (requiring it if needed), or its field, for a
 * name "mod" or "mod\0field" (not NUL-terminated). May raise. */
void lfb_names_resolve(lua_State *L, const char *name, size_t len);

/* One row per handle class (handles.c). */
typedef struct lfb_handle_type {
  unsigned char tag;  /* its number on the wire */
  const char *mtname; /* the class's metatable name */
  const char *what;   /* names it in "cannot leave its process" */
  /* The runtime object of the userdata at idx (NULL when it is collected);
   * a NULL `get` means objects of the class never leave their state, and
   * `what` then says why. */
  lf_obj *(*get)(lua_State *L, int idx);
  /* Pushes the receiving state's object for o (a cached proxy, or a new one
   * that takes a reference of its own). */
  void (*push)(lua_State *L, lf_obj *o);
} lfb_handle_type;
/* The row of the userdata at idx, or NULL; by wire tag, or NULL. */
const lfb_handle_type *lfb_handle_of(lua_State *L, int idx);
const lfb_handle_type *lfb_handle_by_tag(unsigned tag);
/* Light userdata: the handle row of this tag, and a new box (one
 * reference, the caller's) holding the pointer; NULL when out of memory. */
#define LFB_LIGHT_TAG 4
lf_obj *lfb_light_box(void *ptr);
/* Shared values (shared.c): the handle row's tag and functions; the id and
 * bytes of one (borrowed from o); and the receiving process's object for
 * an id, made from the bytes (copied) the first time. May raise. */
#define LFB_SHARED_TAG 5
lf_obj *lfb_shared_obj(lua_State *L, int idx);
void lfb_shared_push(lua_State *L, lf_obj *o);
void lfb_shared_wire(const lf_obj *o, uint64_t *id, const lf_payload **p);
void lfb_shared_push_remote(lua_State *L, uint64_t id, const char *bytes,
                            size_t len);
/* The same for a T_SHARED_ID: the bytes, of length len, are asked for
 * through lfb_shared_fetch the first time (raises without one). */
void lfb_shared_push_id(lua_State *L, uint64_t id, uint32_t len);

#endif /* LFB_CODEC_PARTS */

#endif
