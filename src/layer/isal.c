/* One chunk of kiln's block-parallel gzip, deflated by ISA-L (igzip):
 * raw deflate primed with the previous chunk's tail, ending on a byte
 * boundary (sync flush) or, for the last chunk, with the final block.
 * Kept in C so the ISA-L stream struct is laid out by the library's own
 * header, whatever its version. */
#include <stdint.h>
#include <stdlib.h>
#include <isa-l/igzip_lib.h>

/* Bytes written to out, or -1 (ISA-L failed, or out was too small). */
long kiln_isal_deflate(uint32_t level, const uint8_t *dict, uint32_t dict_len,
                       const uint8_t *in, uint32_t in_len, uint8_t *out,
                       uint32_t out_cap, int last)
{
	static const uint32_t sizes[] = { ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
					  ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT };
	if (level > 3)
		return -1;
	struct isal_zstream *s = malloc(sizeof *s);
	uint8_t *level_buf = malloc(sizes[level]);
	long written = -1;
	if (s == NULL || level_buf == NULL)
		goto out;
	isal_deflate_init(s);
	s->level = level;
	s->level_buf = level_buf;
	s->level_buf_size = sizes[level];
	s->gzip_flag = IGZIP_DEFLATE;
	s->flush = last ? NO_FLUSH : SYNC_FLUSH;
	s->end_of_stream = last ? 1 : 0;
	if (dict_len > 0 && isal_deflate_set_dict(s, (uint8_t *)dict, dict_len) != COMP_OK)
		goto out;
	s->next_in = (uint8_t *)in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_cap;
	if (isal_deflate(s) != COMP_OK || s->avail_in != 0)
		goto out;
	if (last ? s->internal_state.state != ZSTATE_END
		 : s->internal_state.state != ZSTATE_NEW_HDR)
		goto out;
	written = (long)(out_cap - s->avail_out);
out:
	free(level_buf);
	free(s);
	return written;
}
