/* deep_fp — see deep.h; built -O2 with frame pointers. */
#define DEEP_PROG "deep_fp"
#include "deep.h"
