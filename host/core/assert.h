/* Programmer errors only (mismatched views, NULL slots): print and abort.
 * Run-time failures return a dc_status instead. */
#ifndef DC_ASSERT_H
#define DC_ASSERT_H

_Noreturn void dc_abort(const char *file, int line, const char *what);
#define DC_ASSERT(x) ((x) ? (void)0 : dc_abort(__FILE__, __LINE__, #x))

#endif
