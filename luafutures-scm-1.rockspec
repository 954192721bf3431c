rockspec_format = "3.0"
package = "luafutures"
version = "scm-1"
source = {
  url = "git+https://github.com/luafutures/luafutures.git",
}
description = {
  summary = "Python's concurrent.futures for Lua 5.4: thread pools, futures, wait, as_completed, map",
  detailed = [[
A C runtime runs thread pools whose every worker owns its own lua_State, so
Lua code runs truly in parallel; the module concurrent.futures gives submit,
map, wait, as_completed, futures with callbacks, timeouts and cancellation,
and turns provable deadlocks into errors. The rock also carries the
luafutures command, its process-pool worker, and for C hosts the header,
a static library and a pkg-config file.
]],
  homepage = "https://github.com/luafutures/luafutures",
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
-- make builds; LuaRocks copies with the install tables (not make install),
-- so the files land in whatever tree it builds in, the temporary one of
-- --pack-binary-rock included. What C hosts need sits under the library
-- directory, in luafutures/{include,lib,lib/pkgconfig} (see docs/decisions.md).
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INC = "$(LUA_INCDIR)",
  },
  install_pass = false,
  install = {
    lib = {
      ["concurrent.futures"] = "concurrent/futures.so",
      -- with MPI found at build time the MPI executors, else a stub that
      -- says what to install
      ["concurrent.futures.mpi"] = "concurrent/futures/mpi.so",
      ["luafutures.include.luafutures"] = "include/luafutures.h",
      ["luafutures.lib.libluafutures"] = "lib/libluafutures.a",
      ["luafutures.lib.pkgconfig.luafutures"] = "lib/pkgconfig/luafutures.pc",
    },
    bin = {
      ["luafutures"] = "bin/luafutures",
      ["luafutures-worker"] = "bin/luafutures-worker",
    },
  },
  copy_directories = { "types" },
}
test = {
  type = "command",
  command = "make test-c test-lua",
}
