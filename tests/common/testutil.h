/* tests/common/testutil.h - helpers shared by the cmocka programs. */
#ifndef GRAFT_TESTUTIL_H
#define GRAFT_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "graft/graft.h"
#endif
