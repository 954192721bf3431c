# luafutures -- build, test, install.
#
# Knobs (make VAR=value):
#   LUA_INC   Lua 5.4 headers            (default: /usr/include/lua5.4)
#   LUA_LIB   how bin/luafutures links Lua (default: -llua5.4)
#   LUA_STATIC  the Lua archive of `make static` (default: liblua5.4.a)
#   LUA       the Lua 5.4 interpreter    (default: lua5.4)
#   BUSTED    busted, run under Lua 5.4  (default: lua5.4 /usr/bin/busted)
#   SANITIZE  address | thread           (ASan+UBSan or TSan build and run;
#             both also check the Lua stack discipline, -DLFB_DEBUG)
#   CFLAGS    extra compiler flags (after a make clean: CFLAGS=-DLFB_DEBUG
#             checks the stack without a sanitizer); OPT optimisation
#             (default -O2 -g)
#   PREFIX, LIBDIR, BINDIR  install places (set by the rockspec)
#
#   STRESS_TASKS  tasks of `make stress` (default 1000000); STRESS_SEED
#
# Targets: all (default), static, test, test-c, test-lua, deps, demo, bench,
# bench-check, stress, install, clean.

LUA      ?= lua5.4
LUA_INC  ?= /usr/include/lua5.4
LUA_LIB  ?= -llua5.4
BUSTED   ?= lua5.4 /usr/bin/busted
OPT      ?= -O2 -g
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib/lua/5.4
BINDIR   ?= $(PREFIX)/bin

WARN     = -Wall -Wextra -Wno-unused-parameter
# runtime/ is held to more: no shadowed names, every extern prototyped.
RT_WARN  = -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASEFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -pthread $(OPT) $(WARN)
ifeq ($(SANITIZE),address)
  SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -DLFB_DEBUG
  SANENV   = ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LUAFUTURES_SANITIZE=address
  SANLIB   = $(shell $(CC) -print-file-name=libasan.so)
else ifeq ($(SANITIZE),thread)
  SANFLAGS = -fsanitize=thread -fno-omit-frame-pointer -DLFB_DEBUG
  SANENV   = TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/.ci/tsan.supp" LUAFUTURES_SANITIZE=thread
  SANLIB   = $(shell $(CC) -print-file-name=libtsan.so)
endif
ALLFLAGS = $(BASEFLAGS) $(SANFLAGS) $(CFLAGS)
# The sanitizer runtime must come first in a process that dlopens the module.
PRELOAD  = $(if $(SANITIZE),LD_PRELOAD=$(SANLIB) $(SANENV))

BUILD    = build$(if $(SANITIZE),-$(SANITIZE))
RT_SRC   = $(wildcard runtime/*.c)
LB_SRC   = $(filter-out bindings/cli.c bindings/worker_main.c,$(wildcard bindings/*.c))
RT_OBJ   = $(RT_SRC:%.c=$(BUILD)/%.o)
LB_OBJ   = $(LB_SRC:%.c=$(BUILD)/%.o)
MODULE   = concurrent/futures.so
CLI      = bin/luafutures
WORKER   = bin/luafutures-worker

.PHONY: all static test test-c test-lua deps demo bench bench-check bench-scaling stress install clean

all: $(MODULE) $(CLI) $(WORKER)

# runtime/ is compiled without the Lua include path: it must not see Lua.
$(BUILD)/runtime/%.o: runtime/%.c runtime/*.h
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) $(RT_WARN) -c $< -o $@

$(BUILD)/bindings/%.o: bindings/%.c bindings/*.h runtime/lf.h runtime/lf_proc.h
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -I$(LUA_INC) -c $< -o $@

# The module's path is the same for every flavour: relink when it changes.
FLAVOR   = concurrent/.flavor-$(or $(SANITIZE),plain)
$(FLAVOR):
	@mkdir -p concurrent && rm -f concurrent/.flavor-* && touch $@

$(MODULE): $(RT_OBJ) $(LB_OBJ) $(FLAVOR)
	@mkdir -p concurrent
	$(CC) $(ALLFLAGS) -shared -o $@ $(RT_OBJ) $(LB_OBJ)

# The command links the module in (package.preload), so it needs no cpath.
$(CLI): $(BUILD)/bindings/cli.o $(RT_OBJ) $(LB_OBJ) $(FLAVOR)
	@mkdir -p bin
	$(CC) $(ALLFLAGS) -o $@ $(BUILD)/bindings/cli.o $(RT_OBJ) $(LB_OBJ) $(LUA_LIB) -lm -ldl

# The process pool's worker (start_method "spawn"): the module linked in,
# so a worker process starts with one lua_State and no module search.
$(WORKER): $(BUILD)/bindings/worker_main.o $(RT_OBJ) $(LB_OBJ) $(FLAVOR)
	@mkdir -p bin
	$(CC) $(ALLFLAGS) -o $@ $(BUILD)/bindings/worker_main.o $(RT_OBJ) $(LB_OBJ) $(LUA_LIB) -lm -ldl

# The command and its worker linked statically (Lua and the C library
# included), to copy onto a machine that has no Lua: build-static/bin/.
# Without a sanitizer only; C modules can still be required if the machine
# has the C library the build was linked with (the linker warns about it).
STATIC     = build-static/bin
LUA_STATIC ?= $(shell $(CC) -print-file-name=liblua5.4.a)
static: $(STATIC)/luafutures $(STATIC)/luafutures-worker

$(STATIC)/luafutures: $(BUILD)/bindings/cli.o $(RT_OBJ) $(LB_OBJ)
	@mkdir -p $(STATIC)
	$(CC) $(ALLFLAGS) -static -o $@ $^ $(LUA_STATIC) -lm -ldl

$(STATIC)/luafutures-worker: $(BUILD)/bindings/worker_main.o $(RT_OBJ) $(LB_OBJ)
	@mkdir -p $(STATIC)
	$(CC) $(ALLFLAGS) -static -o $@ $^ $(LUA_STATIC) -lm -ldl

$(BUILD)/test_runtime: runtime/tests/test_runtime.c $(RT_OBJ) runtime/tests/test.h
	$(CC) $(ALLFLAGS) -Iruntime -o $@ $(filter-out %.h,$^)

$(BUILD)/test_proc: runtime/tests/test_proc.c $(RT_OBJ) runtime/tests/test.h
	$(CC) $(ALLFLAGS) -Iruntime -o $@ $(filter-out %.h,$^)

test: deps all test-c test-lua

test-c: $(BUILD)/test_runtime $(BUILD)/test_proc
	$(if $(SANITIZE),$(SANENV)) ./$(BUILD)/test_runtime
	$(if $(SANITIZE),$(SANENV)) ./$(BUILD)/test_proc

test-lua: all $(if $(SANITIZE),,static)
	$(PRELOAD) $(BUSTED) spec
# A sanitized bin/luafutures runs without the preload (which breaks even
# /bin/sh under TSan), so its spec runs again from a busted without it.
	$(if $(SANITIZE),$(SANENV) $(BUSTED) spec/cli_spec.lua)

deps:
	@missing=""; \
	for p in lua5.4 liblua5.4-dev lua-cjson lua-busted luarocks lua-socket; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

demo: deps all
	./$(CLI) scripts/demo.lua

bench: all
	bash bench/run.sh

bench-check: all
	bash bench/run.sh --check

# CPU-bound speedup on 1, 2, 4, ... cpu_count workers; bench/results/scaling.*
bench-scaling: all
	LUA="$(LUA)" bash bench/scaling.sh

# Not part of test: a bounded run of STRESS_TASKS tasks with random cancels,
# timeouts, callbacks, errors and killed process workers, then a check that
# nothing is pending or lost and no fd, thread or child is left over.
STRESS_TASKS ?= 1000000
stress: all
	STRESS_TASKS=$(STRESS_TASKS) $(if $(SANITIZE),$(SANENV)) ./$(CLI) bench/stress.lua

install: all
	mkdir -p $(DESTDIR)$(LIBDIR)/concurrent
	cp $(MODULE) $(DESTDIR)$(LIBDIR)/concurrent/futures.so
	mkdir -p $(DESTDIR)$(BINDIR)
	cp $(CLI) $(DESTDIR)$(BINDIR)/luafutures
	cp $(WORKER) $(DESTDIR)$(BINDIR)/luafutures-worker

clean:
	rm -rf build build-* concurrent
	rm -f $(CLI) $(WORKER)
