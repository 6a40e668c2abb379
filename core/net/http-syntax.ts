/** RFC 9110 §5.6.2 token: what a header name (or a method) may be. */
export const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** A character a header field value may not hold (RFC 9110 §5.5: HTAB, SP, VCHAR and obs-text only). */
export const BAD_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/
