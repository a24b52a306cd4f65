/* LD_PRELOAD shim for Amanda's ndmjob: g_malloc(0) returns NULL (GLib's documented
 * behaviour), and ndmjob's NDMPv9->v4 translation (ndmp_9to4_tape_write_request) takes
 * that NULL for out-of-memory, so its own test-tape step T-BW #6 (a zero-byte TAPE_WRITE)
 * fails before anything is sent, against any server, and the suite stops there. With this
 * shim the zero-byte request is sent and the rest of the suite runs. GLib >= 2.46 allocates
 * with the system malloc, so g_free() frees these blocks correctly. */
#include <stdlib.h>

void *g_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}
