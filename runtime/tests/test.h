/*
 * test.h -- the assertions of the runtime's C tests. A failed one prints
 * both sides with its place and ends the test's child process.
 */
#ifndef LF_TEST_H
#define LF_TEST_H

#include <stdio.h>
#include <stdlib.h>

#define ASSERT(c)                                                        \
  do {                                                                   \
    if (!(c)) {                                                          \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c); \
      exit(1);                                                           \
    }                                                                    \
  } while (0)
#define ASSERT_EQ(a, b)                                                  \
  do {                                                                   \
    long long a_ = (long long)(a), b_ = (long long)(b);                  \
    if (a_ != b_) {                                                      \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, \
              __LINE__, #a, #b, a_, b_);                                 \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

#endif
