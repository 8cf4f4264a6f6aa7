/* Header-only: the inline vector helpers live in include/vector_math.h (SwiftPM needs one source file per C target). */
#include "vector_math.h"
