#include "test_util.h"
int main(void) { return 1; /* not written yet */ }
