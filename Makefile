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
#   PREFIX    install root: include/, lib/ (the static library and
#             lib/pkgconfig/luafutures.pc) and, by default, the two below
#   LIBDIR, BINDIR  where the Lua module and the commands go (the rockspec
#             sets them); INCDIR, ARDIR, PCDIR the header, the static
#             library and the pkg-config file (default under PREFIX)
#   MPI       yes | no: also build concurrent/futures/mpi.so, the MPI
#             executors, with MPICC (default: yes when MPICC is found;
#             `make mpi` builds it in any case, `make deps MPI=yes`
#             installs Open MPI)
#   BENCH     yes: `make deps` also installs what `make bench` compares
#             with (lua-luv for the luv column, time for memory)
#   MPICC     the MPI compiler wrapper     (default: mpicc)
#   MPIEXEC   runs the MPI tests            (default: mpiexec)
#   READLINE  yes | no: the command's REPL edits lines and keeps history
#             with GNU readline, as Debian's lua5.4 (default: yes when
#             <readline/readline.h> compiles; `make deps` installs it)
#   FUZZ_TARGETS  the fuzz targets of `make fuzz` (default: fuzz_decode
#             fuzz_wire); FUZZ_SECONDS how long each runs (default 60);
#             FUZZ_CC clang
#   STRESS_TASKS  tasks of `make stress` (default 1000000); STRESS_SEED
#
# Targets: all (default), mpi, static, lib, test, test-c, test-host,
# test-lua, test-mpi, deps, demo, bench, bench-check, bench-poll, bench-mpi,
# fuzz, fuzz-wire, stress, install, dist, clean.

LUA      ?= lua5.4
LUA_INC  ?= /usr/include/lua5.4
LUA_LIB  ?= -llua5.4
BUSTED   ?= lua5.4 /usr/bin/busted
OPT      ?= -O2 -g
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib/lua/5.4
BINDIR   ?= $(PREFIX)/bin

# ---- packaging: the version, defined here only -----------------------------
# futures._VERSION, `luafutures -v`, luafutures.pc, the tarball and the
# versioned rockspec (luafutures-$(VERSION)-1.rockspec) all come from it.
VERSION  = 0.2.0
INCDIR   ?= $(PREFIX)/include
ARDIR    ?= $(PREFIX)/lib
PCDIR    ?= $(ARDIR)/pkgconfig
# Only what include/luafutures.h marks LUAFUTURES_API leaves the module.
PKGFLAGS = -fvisibility=hidden -DLUAFUTURES_VERSION='"$(VERSION)"'

# The whole build, runtime/, bindings/, tests and fuzz targets alike: no
# shadowed names, every extern prototyped, no arithmetic on void *.
WARN     = -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith
BASEFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -pthread $(OPT) $(WARN) $(PKGFLAGS)
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
# The MPI transport needs mpi.h: it goes into the MPI module only.
MPI_RT   = runtime/mpi_link.c runtime/transport_mpi.c
RT_SRC   = $(filter-out $(MPI_RT),$(wildcard runtime/*.c))
LB_SRC   = $(filter-out bindings/cli%.c bindings/worker_main.c bindings/mpi_module.c,$(wildcard bindings/*.c))
RT_OBJ   = $(RT_SRC:%.c=$(BUILD)/%.o)
LB_OBJ   = $(LB_SRC:%.c=$(BUILD)/%.o)
MODULE   = concurrent/futures.so
LIBA     = lib/libluafutures.a
CLI      = bin/luafutures
WORKER   = bin/luafutures-worker
HOST     = $(BUILD)/host

.PHONY: bench-poll test-host all mpi static lib dist install-check test test-c test-lua test-mpi deps demo bench bench-check bench-mpi bench-scaling fuzz fuzz-libfuzzer fuzz-mutate fuzz-wire stress install clean

MPICC    ?= mpicc
MPIEXEC  ?= mpiexec
ifndef MPI
MPI := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo yes || echo no)
endif
MPI_MODULE = concurrent/futures/mpi.so

# The MPI module is the real one where mpicc is found, else a stub (which
# the rock installs all the same).
all: $(MODULE) $(CLI) $(WORKER) $(LIBA) luafutures.pc lib/pkgconfig/luafutures.pc $(MPI_MODULE) $(HOST)
mpi:
	$(MAKE) MPI=yes $(MPI_MODULE)

# runtime/ is compiled without the Lua include path: it must not see Lua.
$(BUILD)/runtime/%.o: runtime/%.c runtime/*.h
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -c $< -o $@

$(BUILD)/bindings/%.o: bindings/%.c bindings/*.h runtime/lf.h runtime/lf_proc.h runtime/lf_queue.h include/luafutures.h | $(LUA_INC)/lua.h
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -I$(LUA_INC) -c $< -o $@

# The module's path is the same for every flavour: relink when it changes.
FLAVOR   = concurrent/.flavor-$(or $(SANITIZE),plain)
$(FLAVOR):
	@mkdir -p concurrent && rm -f concurrent/.flavor-* && touch $@

$(MODULE): $(RT_OBJ) $(LB_OBJ) $(FLAVOR)
	@mkdir -p concurrent
	$(CC) $(ALLFLAGS) -shared -o $@ $(RT_OBJ) $(LB_OBJ)

# ---- the MPI module: concurrent/futures/mpi.so -------------------------------
# The transport (runtime/, with mpi.h) and a stub that hands its table to
# the concurrent.futures already loaded, which holds the pool core and the
# executor class: nothing of the module is copied into this one.
$(BUILD)/mpi/runtime/%.o: runtime/%.c runtime/*.h
	@mkdir -p $(dir $@)
	$(MPICC) $(ALLFLAGS) -c $< -o $@

# Without MPI the rock still installs the module: a stub whose require
# says what to install (`make mpi` insists on the real one).
MPI_OBJ  = $(MPI_RT:%.c=$(BUILD)/mpi/%.o)
ifeq ($(MPI),yes)
$(MPI_MODULE): $(MPI_OBJ) $(BUILD)/bindings/mpi_module.o $(FLAVOR)
	@mkdir -p $(dir $@)
	$(MPICC) $(ALLFLAGS) -shared -o $@ $(MPI_OBJ) $(BUILD)/bindings/mpi_module.o
else
$(MPI_MODULE): bindings/mpi_module.c $(FLAVOR)
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -I$(LUA_INC) -DLFB_NO_MPI -shared -o $@ $<
endif

# ---- the command: bin/luafutures ----------------------------------------------
# It links the module in (package.preload), so it needs no cpath.
ifndef READLINE
READLINE := $(shell printf '\043include <stdio.h>\n\043include <readline/readline.h>\n' | \
              $(CC) -E -x c - >/dev/null 2>&1 && echo yes || echo no)
endif
ifeq ($(READLINE),yes)
$(BUILD)/bindings/cli_repl.o: ALLFLAGS += -DLFB_READLINE
RL_LIB    = -lreadline
RL_STATIC = -lreadline -ltinfo
endif
CLI_OBJ  = $(BUILD)/bindings/cli.o $(BUILD)/bindings/cli_repl.o
# Switching READLINE recompiles the REPL.
RL_FLAG  = $(BUILD)/.readline-$(READLINE)
$(RL_FLAG):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/.readline-* && touch $@
$(BUILD)/bindings/cli_repl.o: $(RL_FLAG)

$(CLI): $(CLI_OBJ) $(RT_OBJ) $(LB_OBJ) $(FLAVOR)
	@mkdir -p bin
	$(CC) $(ALLFLAGS) -o $@ $(CLI_OBJ) $(RT_OBJ) $(LB_OBJ) $(LUA_LIB) $(RL_LIB) -lm -ldl

# Drives a program through a pseudo-terminal, for the REPL's spec.
PTYRUN   = build/tools/ptyrun
$(PTYRUN): spec/tools/ptyrun.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) -o $@ $< -lutil

# The process pool's worker (start_method "spawn"): the module linked in,
# so a worker process starts with one lua_State and no module search.
$(WORKER): $(BUILD)/bindings/worker_main.o $(RT_OBJ) $(LB_OBJ) $(FLAVOR)
	@mkdir -p bin
	$(CC) $(ALLFLAGS) -o $@ $(BUILD)/bindings/worker_main.o $(RT_OBJ) $(LB_OBJ) $(LUA_LIB) -lm -ldl

# ---- packaging: the library for C hosts ------------------------------------
# One relocatable object of the runtime and the bindings, its hidden
# symbols made local, so a host that links the archive sees only the
# header's names (as with the .so) and its own lf_* names cannot clash.
lib: $(LIBA)

$(LIBA): $(RT_OBJ) $(LB_OBJ) $(FLAVOR)
	@mkdir -p lib
	$(LD) -r -o $(BUILD)/luafutures.o $(RT_OBJ) $(LB_OBJ)
	objcopy --localize-hidden $(BUILD)/luafutures.o
	rm -f $@ && $(AR) rcs $@ $(BUILD)/luafutures.o

# The example C host (examples/host/): Lua embedded, the archive linked
# in statically, as the README's embedding section shows.
# host-worker beside it is its own process worker (luafutures_worker_main).
HOST_CFLAGS = $(ALLFLAGS) -Iinclude -I$(LUA_INC)
$(HOST): examples/host/host.c examples/host/engine.c examples/host/engine.h $(LIBA) include/luafutures.h $(HOST)-worker
	$(CC) $(HOST_CFLAGS) -o $@ examples/host/host.c examples/host/engine.c $(LIBA) $(LUA_LIB) -lm -ldl

$(HOST)-worker: examples/host/host_worker.c examples/host/engine.c examples/host/engine.h $(LIBA) include/luafutures.h
	$(CC) $(HOST_CFLAGS) -o $@ examples/host/host_worker.c examples/host/engine.c $(LIBA) $(LUA_LIB) -lm -ldl

test-host: $(HOST)
	$(if $(SANITIZE),$(SANENV)) ./$(HOST)

# luafutures.pc names absolute places under PREFIX (make install writes it
# afresh for the PREFIX it is given). lib/pkgconfig/luafutures.pc is
# relocatable: it finds include/ and lib/ two levels above itself, which is
# this build tree (PKG_CONFIG_PATH=lib/pkgconfig) and, in a rock, the prefix
# LuaRocks deploys it in.
PC_SED = sed -e 's|@VERSION@|$(VERSION)|' -e 's|@LUA_INC@|$(LUA_INC)|'
PC_ABS = $(PC_SED) -e 's|@PREFIX@|$(PREFIX)|' -e 's|@INCDIR@|$(INCDIR)|' \
         -e 's|@ARDIR@|$(ARDIR)|' luafutures.pc.in
PC_REL = $(PC_SED) -e 's|@PREFIX@|$${pcfiledir}/../..|' \
         -e 's|@INCDIR@|$${prefix}/include|' -e 's|@ARDIR@|$${prefix}/lib|' \
         luafutures.pc.in

luafutures.pc: luafutures.pc.in Makefile
	$(PC_ABS) >$@

lib/pkgconfig/luafutures.pc: luafutures.pc.in Makefile
	@mkdir -p $(dir $@)
	$(PC_REL) >$@

# A missing Lua header is named, not left to the compiler's first error.
$(LUA_INC)/lua.h:
	@echo "luafutures: $(LUA_INC)/lua.h not found: install the Lua 5.4" \
	  "headers (Debian: apt-get install liblua5.4-dev) or set LUA_INC" >&2
	@exit 1

# The command and its worker linked statically (Lua and the C library
# included), to copy onto a machine that has no Lua: build-static/bin/.
# Without a sanitizer only; C modules can still be required if the machine
# has the C library the build was linked with (the linker warns about it).
STATIC     = build-static/bin
LUA_STATIC ?= $(shell $(CC) -print-file-name=liblua5.4.a)
static: $(STATIC)/luafutures $(STATIC)/luafutures-worker

# glibc warns that dlopen (Lua's C modules) and getpwnam (readline's ~)
# need its shared libraries at run time, as said above: those two-line
# warnings are dropped, every other message of the link is shown.
QUIET_STATIC = 2>$@.log; s=$$?; awk '/: in function `/ { held = $$0; next } \
  /in statically linked applications requires at runtime/ { held = ""; next } \
  { if (held != "") print held; held = ""; print } \
  END { if (held != "") print held }' $@.log >&2; rm -f $@.log; exit $$s

$(STATIC)/luafutures: $(CLI_OBJ) $(RT_OBJ) $(LB_OBJ)
	@mkdir -p $(STATIC)
	$(CC) $(ALLFLAGS) -static -o $@ $^ $(LUA_STATIC) $(RL_STATIC) -lm -ldl $(QUIET_STATIC)

$(STATIC)/luafutures-worker: $(BUILD)/bindings/worker_main.o $(RT_OBJ) $(LB_OBJ)
	@mkdir -p $(STATIC)
	$(CC) $(ALLFLAGS) -static -o $@ $^ $(LUA_STATIC) -lm -ldl $(QUIET_STATIC)

$(BUILD)/test_runtime: runtime/tests/test_runtime.c $(RT_OBJ) runtime/tests/test.h
	$(CC) $(ALLFLAGS) -Iruntime -o $@ $(filter-out %.h,$^)

$(BUILD)/test_queue: runtime/tests/test_queue.c $(RT_OBJ) runtime/tests/test.h
	$(CC) $(ALLFLAGS) -Iruntime -o $@ $(filter-out %.h,$^)

$(BUILD)/test_proc: runtime/tests/test_proc.c runtime/tests/mailbox.c $(RT_OBJ) runtime/tests/*.h
	$(CC) $(ALLFLAGS) -Iruntime -o $@ $(filter-out %.h,$^)

# A worker that breaks the protocol on purpose, one name per mode (a pool
# passes its worker no arguments): $(BUILD)/fake/fake-<mode>.
FAKE       = $(BUILD)/fake_worker
FAKE_MODES = oversize truncated unknown_id bye_holding bye_lying linger exit99 \
             signal file replay need_unknown
$(FAKE): runtime/tests/fake_worker.c $(RT_OBJ)
	$(CC) $(ALLFLAGS) -Iruntime -o $@ $^
	@mkdir -p $(BUILD)/fake && for m in $(FAKE_MODES); do ln -f $@ $(BUILD)/fake/fake-$$m; done

# make fuzz-wire: the fuzz target of the process reply parser (runtime
# only) under ASan+UBSan, its own mutator running WIRE_SECONDS (default 60)
# over the seeds in spec/fuzz/fuzz_wire/. It is also a libFuzzer target
# (LLVMFuzzerTestOneInput, built with -DLFB_LIBFUZZER).
WIRE_SECONDS ?= 60
$(BUILD)/fuzz_wire: runtime/tests/fuzz_wire.c $(RT_OBJ)
	$(CC) $(ALLFLAGS) -Iruntime -o $@ $^

fuzz-wire:
	$(MAKE) SANITIZE=address build-address/fuzz_wire
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ./build-address/fuzz_wire -m $(WIRE_SECONDS) spec/fuzz/fuzz_wire/*

test: deps all test-c test-host test-lua test-mpi

# The C API of include/luafutures.h, as a host uses it (the objects, not
# the archive, so that the teardown can count the runtime's pools).
$(BUILD)/test_embed: bindings/tests/test_embed.c $(RT_OBJ) $(LB_OBJ) include/luafutures.h runtime/tests/test.h bindings/tests/embed_test.h
	$(CC) $(ALLFLAGS) -I$(LUA_INC) -o $@ $< $(RT_OBJ) $(LB_OBJ) $(LUA_LIB) -lm -ldl

test-c: $(BUILD)/test_runtime $(BUILD)/test_queue $(BUILD)/test_proc $(BUILD)/test_embed $(FAKE) $(WORKER)
	$(if $(SANITIZE),$(SANENV)) ./$(BUILD)/test_runtime
	$(if $(SANITIZE),$(SANENV)) ./$(BUILD)/test_queue
	$(if $(SANITIZE),$(SANENV)) LUAFUTURES_FAKE_DIR=$(CURDIR)/$(BUILD)/fake ./$(BUILD)/test_proc
	$(if $(SANITIZE),$(SANENV)) LUAFUTURES_WORKER=$(CURDIR)/$(WORKER) ./$(BUILD)/test_embed

# The decoder's driver reads crafted payloads for spec/codec_spec.lua.
$(BUILD)/fuzz_decode: bindings/tests/fuzz_decode.c $(RT_OBJ) $(LB_OBJ)
	$(CC) $(ALLFLAGS) -I$(LUA_INC) -o $@ $^ $(LUA_LIB) -lm -ldl

test-lua: all $(PTYRUN) $(FAKE) $(if $(SANITIZE),,static) $(BUILD)/fuzz_decode
	LUAFUTURES_FAKE_DIR=$(CURDIR)/$(BUILD)/fake LUAFUTURES_DECODE_CHECK=$(BUILD)/fuzz_decode $(PRELOAD) $(BUSTED) spec
# A sanitized bin/luafutures runs without the preload (which breaks even
# /bin/sh under TSan), so its spec runs again from a busted without it.
	$(if $(SANITIZE),$(SANENV) $(BUSTED) spec/cli_spec.lua spec/interrupt_spec.lua)

$(BUILD)/test_mpi: runtime/tests/test_mpi.c $(MPI_OBJ) $(RT_OBJ) runtime/tests/test.h
	$(MPICC) $(ALLFLAGS) -Iruntime -o $@ $(filter-out %.h,$^)

# The C test of the MPI transport, one job of three ranks on this machine
# (loopback only; MPIEXEC_TIMEOUT is a guard against a hang, never a
# synchronisation); spec/mpi_spec.lua runs the executors' jobs with
# test-lua. Skipped with a note where there is no MPI; under TSan with
# suppressions for Open MPI's own libraries only (.ci/tsan-mpi.supp).
MPI_ENV  = OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_tcp_if_include=lo \
  OMPI_MCA_oob_tcp_if_include=lo MPIEXEC_TIMEOUT=$${MPIEXEC_TIMEOUT:-120}
MPI_SANENV = $(if $(filter thread,$(SANITIZE)),TSAN_OPTIONS="halt_on_error=1 \
  second_deadlock_stack=1 suppressions=$(CURDIR)/.ci/tsan-mpi.supp",$(SANENV))
# test_embed_mpi is a host of the C API that every rank of its job runs
# (luafutures_shutdown_all over an MPICommExecutor).
$(BUILD)/test_embed_mpi: bindings/tests/test_embed_mpi.c $(RT_OBJ) $(LB_OBJ) include/luafutures.h runtime/tests/test.h bindings/tests/embed_test.h
	$(CC) $(ALLFLAGS) -I$(LUA_INC) -o $@ $< $(RT_OBJ) $(LB_OBJ) $(LUA_LIB) -lm -ldl

ifeq ($(MPI),yes)
test-mpi: $(BUILD)/test_mpi $(BUILD)/test_embed_mpi $(MPI_MODULE) $(CLI)
	@command -v $(MPIEXEC) >/dev/null || { echo "test-mpi: no $(MPIEXEC), MPI tests skipped"; exit 0; }; \
	$(MPI_ENV) $(MPI_SANENV) $(MPIEXEC) -n 3 ./$(BUILD)/test_mpi && \
	$(MPI_ENV) $(MPI_SANENV) $(MPIEXEC) -n 2 ./$(BUILD)/test_embed_mpi
else
test-mpi:
	@echo "test-mpi: no $(MPICC) found: MPI tests skipped"
endif

deps:
	@missing=""; \
	mpi="$(if $(filter yes,$(MPI)),openmpi-bin libopenmpi-dev)"; \
	bench="$(if $(filter yes,$(BENCH)),lua-luv time)"; \
	for p in lua5.4 liblua5.4-dev lua-cjson lua-busted luarocks lua-socket libreadline-dev $$mpi $$bench; do \
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

# luafutures_poll with nothing pending, beside futures.poll() from Lua.
$(BUILD)/bench_poll: bench/c/poll.c $(LIBA) include/luafutures.h
	$(CC) $(ALLFLAGS) -Iinclude -I$(LUA_INC) -o $@ $< $(LIBA) $(LUA_LIB) -lm -ldl

bench-poll: $(BUILD)/bench_poll
	./$(BUILD)/bench_poll

# MPIPoolExecutor over 2 worker ranks vs Python's and our process pools
bench-mpi: all mpi
	bash bench/mpi.sh

# CPU-bound speedup on 1, 2, 4, ... cpu_count workers; bench/results/scaling.*
bench-scaling: all
	LUA="$(LUA)" bash bench/scaling.sh

# Not part of test: a bounded run of STRESS_TASKS tasks with random cancels,
# timeouts, callbacks, errors and killed process workers, then a check that
# nothing is pending or lost and no fd, thread or child is left over.
STRESS_TASKS ?= 1000000
stress: all
	STRESS_TASKS=$(STRESS_TASKS) $(if $(SANITIZE),$(SANENV)) ./$(CLI) bench/stress.lua

# make fuzz: each of FUZZ_TARGETS (T is bindings/tests/T.c or
# runtime/tests/T.c, defining LLVMFuzzerTestOneInput) built by clang as a
# libFuzzer target under ASan+UBSan and run FUZZ_SECONDS over its seed
# corpus spec/fuzz/T/ (read only: what it finds goes to build-fuzz/corpus/T,
# a crash to build-fuzz/crash-*). Without clang's fuzzer runtime, each is
# built with $(CC) under ASan+UBSan and its main mutates the seeds instead
# (`T -m SECONDS SEEDS...`).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz_decode fuzz_wire
FUZZ_BUILD    = build-fuzz
FUZZ_FLAGS    = -std=c11 -D_GNU_SOURCE -pthread -O1 -g -fno-omit-frame-pointer $(WARN) \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -DLFB_DEBUG -DLFB_LIBFUZZER
FUZZ_OBJ      = $(RT_SRC:%.c=$(FUZZ_BUILD)/%.o) $(LB_SRC:%.c=$(FUZZ_BUILD)/%.o)
.SECONDARY: $(FUZZ_OBJ)
FUZZ_ENV      = ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
                UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

fuzz:
	@if echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' | \
	    $(FUZZ_CC) -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null; \
	then $(MAKE) fuzz-libfuzzer; else $(MAKE) fuzz-mutate SANITIZE=address; fi

fuzz-libfuzzer: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_ENV) ./$(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/ $(FUZZ_BUILD)/corpus/$$t spec/fuzz/$$t \
	    || exit 1; \
	done

fuzz-mutate: $(FUZZ_TARGETS:%=$(BUILD)/%)
	@for t in $(FUZZ_TARGETS); do \
	  $(SANENV) ./$(BUILD)/$$t -m $(FUZZ_SECONDS) spec/fuzz/$$t/* || exit 1; \
	done

$(FUZZ_BUILD)/runtime/%.o: runtime/%.c runtime/*.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/bindings/%.o: bindings/%.c bindings/*.h runtime/lf.h runtime/lf_proc.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -I$(LUA_INC) -c $< -o $@

$(FUZZ_BUILD)/%: bindings/tests/%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -I$(LUA_INC) -o $@ $^ $(LUA_LIB) -lm -ldl

$(FUZZ_BUILD)/%: runtime/tests/%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -I$(LUA_INC) -Iruntime -o $@ $^ $(LUA_LIB) -lm -ldl

install: all install-check
	mkdir -p $(DESTDIR)$(LIBDIR)/concurrent
	cp $(MODULE) $(DESTDIR)$(LIBDIR)/concurrent/futures.so
	mkdir -p $(DESTDIR)$(BINDIR)
	cp $(CLI) $(DESTDIR)$(BINDIR)/luafutures
	cp $(WORKER) $(DESTDIR)$(BINDIR)/luafutures-worker
	$(if $(filter yes,$(MPI)),mkdir -p $(DESTDIR)$(LIBDIR)/concurrent/futures && cp $(MPI_MODULE) $(DESTDIR)$(LIBDIR)/concurrent/futures/mpi.so)
	mkdir -p $(DESTDIR)$(INCDIR) $(DESTDIR)$(PCDIR)
	cp include/luafutures.h $(DESTDIR)$(INCDIR)/luafutures.h
	cp $(LIBA) $(DESTDIR)$(ARDIR)/libluafutures.a
	$(PC_ABS) >$(DESTDIR)$(PCDIR)/luafutures.pc

# ---- packaging: install places, a release -----------------------------------
# Each place must be creatable and writable: say which one is not, and how
# to choose another, before copying anything.
install-check:
	@for d in $(LIBDIR) $(BINDIR) $(INCDIR) $(ARDIR) $(PCDIR); do \
	  mkdir -p "$(DESTDIR)$$d" 2>/dev/null && [ -w "$(DESTDIR)$$d" ] || { \
	    echo "make install: cannot write to $(DESTDIR)$$d: run as a user" \
	      "who can, or choose another place: make install PREFIX=\$$HOME/.local" >&2; \
	    exit 1; }; \
	done

# make dist: dist/luafutures-$(VERSION).tar.gz (the tracked files of this
# checkout as they are now) and dist/luafutures-$(VERSION)-1.src.rock, the
# versioned rockspec beside that tarball, which is all `luarocks install`
# needs: it installs offline.
DIST     = dist
DISTNAME = luafutures-$(VERSION)
dist:
	@git rev-parse --git-dir >/dev/null 2>&1 || { echo "make dist: runs in a git checkout (it archives the tracked files)" >&2; exit 1; }
	@command -v zip >/dev/null || { echo "make dist: zip not found (apt-get install zip)" >&2; exit 1; }
	@[ -f $(DISTNAME)-1.rockspec ] || { echo "make dist: no $(DISTNAME)-1.rockspec for VERSION $(VERSION)" >&2; exit 1; }
	rm -rf $(DIST) && mkdir -p $(DIST)
	git ls-files -z | tar --null -T - --transform 's|^|$(DISTNAME)/|' \
	  -czf $(DIST)/$(DISTNAME).tar.gz
	cp $(DISTNAME)-1.rockspec $(DIST)/
	cd $(DIST) && zip -q $(DISTNAME)-1.src.rock $(DISTNAME)-1.rockspec $(DISTNAME).tar.gz
	@echo "$(DIST)/$(DISTNAME).tar.gz $(DIST)/$(DISTNAME)-1.src.rock"

clean:
	rm -rf build build-* concurrent
	rm -f $(CLI) $(WORKER)
	rm -rf lib dist luafutures.pc
