/* Minimal logging to stderr; verbosity set once by main.c. */
#ifndef DC_LOG_H
#define DC_LOG_H

void dc_log_set_verbose(int verbose);
int dc_log_verbose(void);
void dc_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* only when verbose */
void dc_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* always */
double dc_now_seconds(void); /* monotonic clock */

#endif
