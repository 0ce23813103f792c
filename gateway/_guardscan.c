/* The value guard's scans over ASCII JSON, in one pass each (gateway/guard.py is the definition).
 *
 * `ValueGuard.prepare` asks, for every event, whether each identifier value occurs exactly once
 * in the event's canonical JSON (in its own field), whether the text holds an at-sign or an
 * encoding mark, and whether an operator could write one of the values; a sink's output is
 * checked for the values and an at-sign. In Python each of those is a search of its own over
 * the lower-cased text; here the text is lower-cased once into a buffer, and the values and
 * the address's spellings are all counted on it in one pass (`count_many`). Only ASCII text without a backslash is taken (then a value's JSON spelling is the value
 * itself, and ASCII lower-casing is `gateway.guard.fold`); for any other text the functions
 * answer None and the caller runs the Python definition. tests/unit/test_guardscan.py checks
 * both give the same answer on generated events.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X86 1 /* SSE2 always; AVX2 chosen at import where the CPU has it */
#include <immintrin.h>
#endif

#define FLAG_MARKS 1    /* an at-sign or an encoding mark occurs in the text */
#define FLAG_REPEATED 2 /* a value occurs other than exactly once, or an IP form elsewhere */
#define FLAG_WRITABLE 4 /* an operator could write one of the identifier values */
#define MAX_VALUES 16 /* identifier fields read from an event, the IP apart */

#define STACK_TEXT 4096
#define MAX_NAME 32 /* a named character reference's longest name (gateway.guard._NAMED_REF) */

typedef struct {
    PyObject_HEAD
    unsigned char joiners[256];  /* characters an operator puts between copied runs */
    unsigned char alphabet[256]; /* characters of text operators write whole */
    int has_alphabet;
    unsigned char ip_alphabet[256]; /* characters of text operators but the IP's write whole */
    int has_ip_alphabet;
    int native_ipv4; /* an address's forms and writability are read here, not in Python */
    Py_ssize_t cache_size; /* addresses read here are remembered in forms_cache below it */
    PyObject *pieces; /* frozenset: every piece of the operators' fixed texts, folded */
    /* (first, last) character pairs of the ASCII pieces, and their longest length: a value
     * outside them is no piece, without hashing it and probing the (large) set */
    unsigned char ends[128][128];
    /* adjacent character pairs of the ASCII pieces (bits): a value holding another pair is
     * no piece either (ids seldom are made of the fixed texts' pairs alone) */
    uint64_t pairs[128][2];
    Py_ssize_t longest_piece;
    int ready;        /* __init__ succeeded: nothing is scanned before */
    int has_risk;     /* false: nothing is proven (every value counts as writable) */
    PyObject *id_fields;     /* tuple of str: the identifier fields but the IP */
    PyObject *ip_field;      /* str */
    PyObject *forms_cache;   /* dict: IP -> tuple of its other spellings (gateway.guard) */
    PyObject *written_cache; /* dict: IP -> whether an operator could write it */
    PyObject *forms_of;      /* forms_of(guard, ip) -> tuple (str forms, then bytes anchors),
                                remembered in forms_cache */
    PyObject *written_of;    /* written_of(guard, ip, forms) -> bool, remembered likewise */
    PyObject *guarded_type;  /* gateway.guard.GuardedInput, a tuple of 7 */
    PyObject *no_hits;       /* its `hits` when nothing was replaced */
    char *names; /* HTML legacy reference names, lower case, joined by NUL, sorted */
    Py_ssize_t names_len;
    Py_ssize_t first[27]; /* offset in `names` of the first name starting with 'a' + i */
} Scanner;

/* A buffer for the lower-cased text: on the stack when it fits. */
typedef struct {
    unsigned char stack[STACK_TEXT];
    unsigned char *data;
} Buffer;

static unsigned char *
buffer_get(Buffer *buffer, Py_ssize_t size)
{
    if (size <= STACK_TEXT) {
        buffer->data = buffer->stack;
    }
    else {
        buffer->data = PyMem_Malloc((size_t)size);
        if (buffer->data == NULL) {
            PyErr_NoMemory();
        }
    }
    return buffer->data;
}

static void
buffer_free(Buffer *buffer)
{
    if (buffer->data != NULL && buffer->data != buffer->stack) {
        PyMem_Free(buffer->data);
    }
    buffer->data = NULL;
}

#define SEEN_NON_ASCII 1
#define SEEN_ESCAPE 2     /* a backslash */
#define SEEN_AT_PERCENT 4 /* an at-sign or a percent sign */
#define SEEN_AMPERSAND 8
#define SEEN_PLUS 16 /* form encoding's space */

/* `text` lower-cased into `out`, and what it holds (SEEN_*). Branch-free, so the compiler runs
 * it on vectors: the marks' single characters cost no pass of their own. Built twice: for the
 * baseline CPU (SSE2 on x86-64) and, where the CPU has it, for AVX2 (twice the width). */
#define DEFINE_LOWER(NAME, ATTRIBUTE)                                                            \
    ATTRIBUTE static unsigned NAME(const unsigned char *text, Py_ssize_t n, unsigned char *out) \
    {                                                                                            \
        unsigned char high = 0, escape = 0, at_percent = 0, ampersand = 0, plus = 0;            \
        for (Py_ssize_t i = 0; i < n; i++) {                                                     \
            unsigned char c = text[i];                                                           \
            high |= c;                                                                           \
            escape |= (unsigned char)(c == '\\');                                                \
            at_percent |= (unsigned char)((c == '@') | (c == '%'));                              \
            ampersand |= (unsigned char)(c == '&');                                              \
            plus |= (unsigned char)(c == '+');                                                   \
            out[i] = (unsigned char)(c + (((unsigned char)(c - 'A') < 26u) << 5));               \
        }                                                                                        \
        return (high >> 7 ? SEEN_NON_ASCII : 0) | (escape ? SEEN_ESCAPE : 0)                     \
               | (at_percent ? SEEN_AT_PERCENT : 0) | (ampersand ? SEEN_AMPERSAND : 0)           \
               | (plus ? SEEN_PLUS : 0);                                                         \
    }

DEFINE_LOWER(lower_base, )
#ifdef HAVE_X86
DEFINE_LOWER(lower_avx2, __attribute__((target("avx2"))))
#endif
/* lower_avx2 where the CPU has it (module init) */
static unsigned (*lower_ascii)(const unsigned char *, Py_ssize_t, unsigned char *) = lower_base;

/* Candidates for `needle` (m >= 2) among the starting positions of `hay` one vector holds:
 * its first and its last byte in place. With SSE2 16 positions a test, with AVX2 32, and only
 * those are compared whole (glibc's memmem is not vectorised: ~570 instructions per call on
 * event-sized text). Each returns the first match at or after `i`, or NULL; `*at` is where its
 * vector loop stopped (the caller tests the rest one by one). */
#ifdef HAVE_X86
/* One definition for both widths: WIDTH starting positions per test, the intrinsics of its
 * vector type, ATTRIBUTE the code's target. */
#define DEFINE_FIND(NAME, ATTRIBUTE, WIDTH, VECTOR, SET1, LOAD, CMPEQ, AND, MOVEMASK)            \
    ATTRIBUTE static const unsigned char *NAME(const unsigned char *hay, Py_ssize_t n,           \
                                               const unsigned char *needle, Py_ssize_t m,        \
                                               Py_ssize_t *at)                                   \
    {                                                                                            \
        const VECTOR first = SET1((char)needle[0]);                                              \
        const VECTOR last = SET1((char)needle[m - 1]);                                           \
        const unsigned all = (unsigned)(((uint64_t)1 << WIDTH) - 1);                             \
        Py_ssize_t i = 0;                                                                        \
        Py_ssize_t starts_left = n - m + 1; /* starting positions 0 .. n - m */                  \
        for (; i < starts_left; i += WIDTH) {                                                    \
            Py_ssize_t block = i;                                                                \
            unsigned skip = 0;                                                                   \
            if (i + WIDTH > starts_left) { /* the last block: WIDTH positions ending last */     \
                if (starts_left < WIDTH) {                                                       \
                    break; /* too short for one vector: the caller's loop */                     \
                }                                                                                \
                block = starts_left - WIDTH;                                                     \
                skip = (unsigned)(i - block); /* positions before `i` were tested already */     \
            }                                                                                    \
            VECTOR starts = LOAD((const VECTOR *)(hay + block));                                 \
            VECTOR ends = LOAD((const VECTOR *)(hay + block + m - 1));                           \
            unsigned mask = (unsigned)MOVEMASK(AND(CMPEQ(starts, first), CMPEQ(ends, last)));    \
            mask &= all << skip;                                                                 \
            while (mask != 0) {                                                                  \
                int bit = __builtin_ctz(mask);                                                   \
                if (memcmp(hay + block + bit + 1, needle + 1, (size_t)(m - 2)) == 0) {           \
                    return hay + block + bit;                                                    \
                }                                                                                \
                mask &= mask - 1;                                                                \
            }                                                                                    \
        }                                                                                        \
        *at = i < starts_left ? i : starts_left;                                                 \
        return NULL;                                                                             \
    }

DEFINE_FIND(find_sse2, , 16, __m128i, _mm_set1_epi8, _mm_loadu_si128, _mm_cmpeq_epi8,
            _mm_and_si128, _mm_movemask_epi8)
DEFINE_FIND(find_avx2, __attribute__((target("avx2"))), 32, __m256i, _mm256_set1_epi8,
            _mm256_loadu_si256, _mm256_cmpeq_epi8, _mm256_and_si256, _mm256_movemask_epi8)
#endif

/* No vectors: every starting position is left to the caller's loop. */
static const unsigned char *
find_scalar(const unsigned char *hay, Py_ssize_t n, const unsigned char *needle, Py_ssize_t m,
            Py_ssize_t *at)
{
    (void)hay, (void)n, (void)needle, (void)m;
    *at = 0;
    return NULL;
}

typedef const unsigned char *(*vector_find)(const unsigned char *, Py_ssize_t,
                                            const unsigned char *, Py_ssize_t, Py_ssize_t *);
/* find_avx2 where the CPU has it, else find_sse2 (module init); `_use_vectors` for the tests */
static vector_find find_vectors = find_scalar;

/* The first occurrence of `needle` (m > 0) in `hay`, or NULL. */
static const unsigned char *
find(const unsigned char *hay, Py_ssize_t n, const unsigned char *needle, Py_ssize_t m)
{
    if (m > n) {
        return NULL;
    }
    if (m == 1) {
        return memchr(hay, needle[0], (size_t)n);
    }
    Py_ssize_t i = 0;
    const unsigned char *found = find_vectors(hay, n, needle, m, &i);
    if (found != NULL) {
        return found;
    }
    for (; i + m <= n; i++) { /* the last starting positions (all of them on other CPUs) */
        if (hay[i] == needle[0] && hay[i + m - 1] == needle[m - 1]
            && memcmp(hay + i + 1, needle + 1, (size_t)(m - 2)) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

/* Non-overlapping occurrences of `needle` in `hay`, as str.count counts them (m > 0). */
static Py_ssize_t
count_in(const unsigned char *hay, Py_ssize_t n, const unsigned char *needle, Py_ssize_t m)
{
    Py_ssize_t count = 0;
    const unsigned char *at = hay;
    const unsigned char *end = hay + n;
    const unsigned char *found;
    while ((found = find(at, end - at, needle, m)) != NULL) {
        count++;
        at = found + m;
    }
    return count;
}

static int
contains(const unsigned char *hay, Py_ssize_t n, const unsigned char *needle, Py_ssize_t m)
{
    return find(hay, n, needle, m) != NULL;
}

/* Many needles counted at once (the scan's values, the IP and its forms): one pass over the
 * text instead of one per needle. A needle's place is `data`, `length` (> 0); `count` is set to
 * its non-overlapping occurrences, as str.count counts them. */
typedef struct {
    const unsigned char *data;
    Py_ssize_t length;
    Py_ssize_t count;
    Py_ssize_t next; /* the first position a further occurrence may start at */
} Needle;

/* One count_in per needle: the answer every other way must give. */
static void
count_each(const unsigned char *hay, Py_ssize_t n, Needle *needles, Py_ssize_t k)
{
    for (Py_ssize_t i = 0; i < k; i++) {
        needles[i].count = count_in(hay, n, needles[i].data, needles[i].length);
    }
}

#ifdef HAVE_X86
#define BUCKETS 8       /* one bit of a byte each */
#define PER_BUCKET 4    /* needles sharing a bucket; the rest are counted one by one */
#define FINGERPRINT 3   /* leading bytes a candidate matches (by their two nibbles) */

/* The same counts with the needles' first three bytes looked for in 32 positions a test (AVX2):
 * each needle of 3 bytes or more is put in one of 8 buckets, and for each byte of the
 * fingerprint two 16-entry tables (by low nibble, by high nibble) give the buckets whose
 * needles hold a byte with that nibble there. A position where every table agrees on a bucket
 * is a candidate for that bucket's needles, compared whole. Hyperscan's "Teddy" search works
 * this way. Shorter needles, and those past the buckets' room, are counted one by one. */
__attribute__((target("avx2"))) static void
count_many_avx2(const unsigned char *hay, Py_ssize_t n, Needle *needles, Py_ssize_t k)
{
    unsigned char low_table[FINGERPRINT][16] = {{0}}, high_table[FINGERPRINT][16] = {{0}};
    Needle *members[BUCKETS][PER_BUCKET];
    int sizes[BUCKETS] = {0};
    Py_ssize_t starts = n - FINGERPRINT + 1; /* positions a fingerprint fits at */
    int bucket = 0, any = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        Needle *needle = &needles[i];
        needle->count = 0;
        needle->next = 0;
        if (needle->length < FINGERPRINT || starts < 32 || sizes[bucket] == PER_BUCKET) {
            needle->count = count_in(hay, n, needle->data, needle->length);
            continue;
        }
        for (int j = 0; j < FINGERPRINT; j++) {
            low_table[j][needle->data[j] & 15] |= (unsigned char)(1u << bucket);
            high_table[j][needle->data[j] >> 4] |= (unsigned char)(1u << bucket);
        }
        members[bucket][sizes[bucket]++] = needle;
        bucket = (bucket + 1) % BUCKETS;
        any = 1;
    }
    if (!any) {
        return;
    }
    __m256i lows[FINGERPRINT], highs[FINGERPRINT];
    for (int j = 0; j < FINGERPRINT; j++) {
        lows[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)low_table[j]));
        highs[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)high_table[j]));
    }
    const __m256i nibble = _mm256_set1_epi8(15);
    const __m256i zero = _mm256_setzero_si256();
    for (Py_ssize_t i = 0; i < starts; i += 32) {
        Py_ssize_t block = i;
        unsigned skip = 0;
        if (i + 32 > starts) { /* the last block: 32 positions ending last */
            block = starts - 32;
            skip = (unsigned)(i - block); /* positions before `i` were tested already */
        }
        __m256i found = _mm256_set1_epi8(-1);
        for (int j = 0; j < FINGERPRINT; j++) {
            __m256i bytes = _mm256_loadu_si256((const __m256i *)(hay + block + j));
            __m256i lo = _mm256_and_si256(bytes, nibble);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble);
            found = _mm256_and_si256(found, _mm256_and_si256(_mm256_shuffle_epi8(lows[j], lo),
                                                             _mm256_shuffle_epi8(highs[j], hi)));
        }
        unsigned mask = ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(found, zero));
        mask &= ~0u << skip;
        if (mask == 0) {
            continue;
        }
        unsigned char buckets[32];
        _mm256_storeu_si256((__m256i *)buckets, found);
        while (mask != 0) {
            int bit = __builtin_ctz(mask);
            Py_ssize_t at = block + bit;
            for (unsigned set = buckets[bit]; set != 0; set &= set - 1) {
                int b = __builtin_ctz(set);
                for (int s = 0; s < sizes[b]; s++) {
                    Needle *needle = members[b][s];
                    if (at >= needle->next && at + needle->length <= n
                        && memcmp(hay + at, needle->data, (size_t)needle->length) == 0) {
                        needle->count++;
                        needle->next = at + needle->length;
                    }
                }
            }
            mask &= mask - 1;
        }
    }
}
#endif

typedef void (*many_counter)(const unsigned char *, Py_ssize_t, Needle *, Py_ssize_t);
/* count_many_avx2 where the CPU has it, else count_each (module init; `_use_vectors`) */
static many_counter count_many = count_each;

static int
is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* True when the `&` at low[i] starts a character reference html.unescape decodes:
 * `&#`, `&name;` (a letter, then 1 to 31 letters or digits) or a legacy name without `;`.
 * The same test as gateway.guard._NAMED_REF on lower-cased text. */
static int
reference_at(const Scanner *self, const unsigned char *low, Py_ssize_t n, Py_ssize_t i)
{
    if (i + 1 >= n) {
        return 0;
    }
    unsigned char c = low[i + 1];
    if (c == '#') {
        return 1;
    }
    if (c < 'a' || c > 'z') {
        return 0;
    }
    Py_ssize_t j = i + 1;
    while (j < n && is_name_char(low[j])) {
        j++;
    }
    Py_ssize_t run = j - (i + 1);
    if (run >= 2 && run <= MAX_NAME && j < n && low[j] == ';') {
        return 1;
    }
    const char *name = self->names + self->first[c - 'a'];
    const char *stop = self->names + self->first[c - 'a' + 1];
    while (name < stop) {
        size_t length = strlen(name);
        if ((Py_ssize_t)length <= run && memcmp(name, low + i + 1, length) == 0) {
            return 1;
        }
        name += length + 1;
    }
    return 0;
}

/* `_may_hide_spelling` for lower-cased ASCII text: an at-sign, a percent sign, a reference.
 * `seen`: what `lower_ascii` saw in it. */
static int
has_marks(const Scanner *self, const unsigned char *low, Py_ssize_t n, unsigned seen)
{
    if (seen & SEEN_AT_PERCENT) {
        return 1;
    }
    if (!(seen & SEEN_AMPERSAND)) {
        return 0;
    }
    const unsigned char *at = low;
    const unsigned char *end = low + n;
    while (at < end && (at = memchr(at, '&', (size_t)(end - at))) != NULL) {
        if (reference_at(self, low, n, at - low)) {
            return 1;
        }
        at++;
    }
    return 0;
}

/* `has_at_sign` for lower-cased ASCII text. */
static int
has_at_sign(const unsigned char *low, Py_ssize_t n)
{
    return memchr(low, '@', (size_t)n) != NULL || contains(low, n, (const unsigned char *)"%40", 3)
           || contains(low, n, (const unsigned char *)"%2540", 5)
           || contains(low, n, (const unsigned char *)"&#", 2)
           || contains(low, n, (const unsigned char *)"&commat", 7);
}

/* Whether a folded ASCII value (`spelling`, its str) is a piece of the operators' fixed texts;
 * -1: error. The tables first: most values fail them without a hash or a probe. */
static int
in_pieces(const Scanner *self, PyObject *spelling, const unsigned char *value, Py_ssize_t m)
{
    if (m > self->longest_piece || !self->ends[value[0] & 127][value[m - 1] & 127]) {
        return 0;
    }
    for (Py_ssize_t k = 0; k + 1 < m; k++) { /* (the value is ASCII: ascii_of) */
        if (!(self->pairs[value[k]][value[k + 1] >> 6] >> (value[k + 1] & 63) & 1)) {
            return 0;
        }
    }
    return PySet_Contains(self->pieces, spelling);
}

/* A value written whole in one of an alphabet's characters, or holding a joiner. */
static int
joined_or_in(const Scanner *self, const unsigned char *alphabet, int has_alphabet,
             const unsigned char *value, Py_ssize_t m)
{
    int all_in_alphabet = has_alphabet;
    for (Py_ssize_t k = 0; k < m; k++) {
        if (self->joiners[value[k]]) {
            return 1;
        }
        all_in_alphabet &= alphabet[value[k]];
    }
    return all_in_alphabet;
}

/* `SynthesisRisk.any_writable` for one folded ASCII value (`spelling`, its str); -1: error. */
static int
writable(const Scanner *self, PyObject *spelling, const unsigned char *value, Py_ssize_t m)
{
    if (joined_or_in(self, self->alphabet, self->has_alphabet, value, m)) {
        return 1;
    }
    return in_pieces(self, spelling, value, m);
}

/* A digit or a lower-case hex letter. */
static int
is_hex_low(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Whether a spelling (ASCII) is an address as one number: hex digits only
 * (gateway.guard._number_form). */
static int
is_number_form(PyObject *spelling)
{
    Py_ssize_t m = PyUnicode_GET_LENGTH(spelling), k = 0;
    const unsigned char *value = (const unsigned char *)PyUnicode_DATA(spelling);
    while (k < m && is_hex_low(value[k])) {
        k++;
    }
    return m > 0 && k == m;
}

/* `SynthesisRisk.ip_writable` for one spelling (ASCII) of an address whose host bits are set (no
 * network prefix a sink keeps can hold it: no truncation is asked); -1: error. */
static int
ip_spelling_writable(const Scanner *self, PyObject *spelling)
{
    Py_ssize_t m = PyUnicode_GET_LENGTH(spelling);
    const unsigned char *value = (const unsigned char *)PyUnicode_DATA(spelling);
    if (joined_or_in(self, self->ip_alphabet, self->has_ip_alphabet, value, m)) {
        return 1;
    }
    return in_pieces(self, spelling, value, m);
}

/* Whether an address's forms hold a dotted one: the IPv4 it carries (6to4, Teredo, mapped),
 * whose truncation leaves its last group: never sure (gateway.guard._host_bits_set). */
static int
carries_dotted(PyObject *forms)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(forms); i++) {
        PyObject *form = PyTuple_GET_ITEM(forms, i);
        if (PyUnicode_CheckExact(form) && PyUnicode_FindChar(form, '.', 0, PyUnicode_GET_LENGTH(form), 1) >= 0) {
            return 1;
        }
    }
    return 0;
}

/* `gateway.guard._host_bits_set` where it surely answers True: the text is written in an
 * address's characters only, its last group (after its last `.`, or without one its last `:`)
 * is 1 to 4 plain decimal (hex) digits, a number
 * not divisible by 4, and it is not an IPv6 address with a dotted tail (the caller also asks
 * `carries_dotted`). 0 otherwise (not set, or not surely: Python decides). */
static int
host_bits_surely_set(const unsigned char *ip, Py_ssize_t m)
{
    for (Py_ssize_t k = 0; k < m; k++) { /* only an address's characters (`_ADDRESS_CHARACTERS`) */
        unsigned char c = ip[k];
        if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') || c == '.'
              || c == ':')) {
            return 0;
        }
    }
    int dot = memchr(ip, '.', (size_t)m) != NULL;
    if (dot && memchr(ip, ':', (size_t)m) != NULL) {
        return 0; /* an IPv6 address with a dotted tail: never sure */
    }
    Py_ssize_t start = m;
    while (start > 0 && ip[start - 1] != (dot ? '.' : ':')) {
        start--;
    }
    Py_ssize_t length = m - start;
    if (length < 1 || length > 4) {
        return 0;
    }
    unsigned number = 0;
    for (Py_ssize_t k = start; k < m; k++) {
        unsigned char c = ip[k];
        unsigned digit;
        if (c >= '0' && c <= '9') {
            digit = (unsigned)(c - '0');
        }
        else if (!dot && ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')) {
            digit = (unsigned)((c | 0x20) - 'a' + 10);
        }
        else {
            return 0;
        }
        number = number * (dot ? 10 : 16) + digit;
    }
    return number % 4 != 0;
}

/* An IPv4 address in dotted-quad text, read as Python's `socket.inet_pton` reads it (glibc's
 * inet_pton4, whose rules are these: four decimal parts of 0 to 255 joined by `.`, no leading
 * zero, nothing else): 1 and its four bytes in `out`, or 0. */
static int
parse_ipv4(const unsigned char *data, Py_ssize_t m, unsigned char out[4])
{
    if (m < 7 || m > 15) {
        return 0;
    }
    int part = 0, digits = 0;
    unsigned value = 0;
    for (Py_ssize_t k = 0; k < m; k++) {
        unsigned char c = data[k];
        if (c >= '0' && c <= '9') {
            if (digits == 1 && value == 0) {
                return 0; /* a leading zero */
            }
            value = value * 10 + (unsigned)(c - '0');
            if (value > 255) {
                return 0;
            }
            digits++;
        }
        else if (c == '.' && digits > 0 && part < 3) {
            out[part++] = (unsigned char)value;
            value = 0;
            digits = 0;
        }
        else {
            return 0;
        }
    }
    if (digits == 0 || part != 3) {
        return 0;
    }
    out[3] = (unsigned char)value;
    return 1;
}

/* `number` (< 0x10000) in lower-case hex without leading zeros at `out`: its length. */
static Py_ssize_t
hex_group(unsigned number, char *out)
{
    static const char digits[] = "0123456789abcdef";
    Py_ssize_t length = number >= 0x1000 ? 4 : number >= 0x100 ? 3 : number >= 0x10 ? 2 : 1;
    for (Py_ssize_t k = length - 1; k >= 0; k--, number >>= 4) {
        out[k] = digits[number & 15];
    }
    return length;
}

/* Whether a parsed IPv6 address may carry an IPv4 one (gateway.ipforms.carried_ipv4s): under
 * a carrier's leading bytes (mapped, compatible, translated, NAT64, 6to4, Teredo; a superset)
 * or with an ISATAP interface identifier. Those are left to Python. */
static int
may_carry_ipv4(const unsigned char p[16])
{
    static const unsigned char isatap[2][4] = {{0, 0, 0x5e, 0xfe}, {2, 0, 0x5e, 0xfe}};
    unsigned start = (unsigned)p[0] << 8 | p[1];
    if (start == 0 || start == 0x0064 || start == 0x2002) {
        return 1;
    }
    if (start == 0x2001 && p[2] == 0 && p[3] == 0) {
        return 1;
    }
    return memcmp(p + 8, isatap[0], 4) == 0 || memcmp(p + 8, isatap[1], 4) == 0;
}

/* `ValueGuard._ip_forms` of an IPv6 address that carries no IPv4 one (gateway.guard:
 * `ip_spellings` then `ip_anchors`): compressed and written out in full (those unlike `low`,
 * the address in lower case), then the anchor (its longest first-six group in hex, the last
 * of those, with a colon; a lone colon when all six are zero). A new tuple; NULL without an
 * exception for any other text (Python decides). */
static PyObject *
ipv6_forms(const unsigned char *data, Py_ssize_t m, const unsigned char *low)
{
    char text[INET6_ADDRSTRLEN];
    unsigned char p[16];
    if (m < 2 || m >= (Py_ssize_t)sizeof text || memchr(data, 0, (size_t)m) != NULL) {
        return NULL;
    }
    memcpy(text, data, (size_t)m);
    text[m] = '\0';
    if (inet_pton(AF_INET6, text, p) != 1 || may_carry_ipv4(p)) {
        return NULL;
    }
    char compressed[INET6_ADDRSTRLEN], full[40], anchor[6];
    if (inet_ntop(AF_INET6, p, compressed, sizeof compressed) == NULL) {
        return NULL;
    }
    Py_ssize_t at = 0, width = 0;
    unsigned host = 0;
    for (int g = 0; g < 8; g++) {
        unsigned group = (unsigned)p[2 * g] << 8 | p[2 * g + 1];
        static const char digits[] = "0123456789abcdef";
        for (int k = 3; k >= 0; k--) {
            full[at + 3 - k] = digits[group >> (4 * k) & 15];
        }
        at += 4;
        if (g < 7) {
            full[at++] = ':';
        }
        Py_ssize_t length = group >= 0x1000 ? 4 : group >= 0x100 ? 3 : group >= 0x10 ? 2 : 1;
        if (g < 6 && group != 0 && length >= width) {
            host = group;
            width = length;
        }
    }
    Py_ssize_t anchor_length = 1;
    anchor[0] = ':';
    if (host != 0) {
        anchor_length = hex_group(host, anchor);
        anchor[anchor_length++] = ':';
    }
    Py_ssize_t compressed_length = (Py_ssize_t)strlen(compressed);
    int keep_compressed = !(compressed_length == m && memcmp(compressed, low, (size_t)m) == 0);
    int keep_full = !(m == 39 && memcmp(full, low, 39) == 0)
                    && !(keep_compressed && compressed_length == 39 && memcmp(full, compressed, 39) == 0);
    PyObject *items[3];
    Py_ssize_t count = 0;
    if (keep_compressed) {
        items[count++] = PyUnicode_FromStringAndSize(compressed, compressed_length);
    }
    if (keep_full) {
        items[count++] = PyUnicode_FromStringAndSize(full, 39);
    }
    items[count++] = PyBytes_FromStringAndSize(anchor, anchor_length);
    PyObject *forms = PyTuple_New(count);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (forms == NULL || items[i] == NULL) {
            for (Py_ssize_t j = i; j < count; j++) {
                Py_XDECREF(items[j]);
            }
            Py_XDECREF(forms);
            return NULL; /* (an exception is set) */
        }
        PyTuple_SET_ITEM(forms, i, items[i]);
    }
    return forms;
}

/* `ValueGuard._ip_forms` of an IPv4 address (gateway.guard: `ip_spellings` then `ip_anchors`):
 * its IPv4-mapped hex groups (str), then the anchors (bytes), a new tuple. */
static PyObject *
ipv4_forms(const unsigned char b[4])
{
    unsigned upper = (unsigned)b[0] << 8 | b[1], lower = (unsigned)b[2] << 8 | b[3];
    /* the spellings (gateway.guard._ipv4_spellings): hex groups, inverted, inverted dotted,
     * then `U::` where a lower group is zero and `::L` where an upper one is (as is, then
     * inverted), then the address as one number where its first byte is not zero: decimal, hex
     * padded and unpadded, octal */
    char spelled[11][16];
    Py_ssize_t lengths[11], count = 0;
    for (int inverted = 0; inverted < 2; inverted++) {
        unsigned u = inverted ? upper ^ 0xFFFF : upper, l = inverted ? lower ^ 0xFFFF : lower;
        Py_ssize_t at = hex_group(u, spelled[count]);
        spelled[count][at++] = ':';
        at += hex_group(l, spelled[count] + at);
        lengths[count++] = at;
    }
    Py_ssize_t at = 0;
    for (int k = 0; k < 4; k++) { /* dotted, inverted */
        unsigned octet = b[k] ^ 255u;
        if (octet >= 100) {
            spelled[count][at++] = (char)('0' + octet / 100);
        }
        if (octet >= 10) {
            spelled[count][at++] = (char)('0' + octet / 10 % 10);
        }
        spelled[count][at++] = (char)('0' + octet % 10);
        if (k < 3) {
            spelled[count][at++] = '.';
        }
    }
    lengths[count++] = at;
    for (int inverted = 0; inverted < 2; inverted++) {
        unsigned u = inverted ? upper ^ 0xFFFF : upper, l = inverted ? lower ^ 0xFFFF : lower;
        if (l == 0) {
            Py_ssize_t at = hex_group(u, spelled[count]);
            spelled[count][at++] = ':';
            spelled[count][at++] = ':';
            lengths[count++] = at;
        }
    }
    for (int inverted = 0; inverted < 2; inverted++) { /* `::L` where an upper group is zero */
        unsigned u = inverted ? upper ^ 0xFFFF : upper, l = inverted ? lower ^ 0xFFFF : lower;
        if (u == 0) {
            spelled[count][0] = ':';
            spelled[count][1] = ':';
            lengths[count] = 2 + hex_group(l, spelled[count] + 2);
            count++;
        }
    }
    if (b[0] != 0) { /* the address as one number: decimal, hex padded to 8 digits, unpadded */
        unsigned long number = (unsigned long)upper << 16 | lower;
        lengths[count] = snprintf(spelled[count], sizeof spelled[count], "%lu", number);
        count++;
        lengths[count] = snprintf(spelled[count], sizeof spelled[count], "%08lx", number);
        count++;
        if (b[0] < 16) { /* (from 16.0.0.0 on, the unpadded form is the padded one) */
            lengths[count] = snprintf(spelled[count], sizeof spelled[count], "%lx", number);
            count++;
        }
        /* octal, without its leading zero (any number of zeros may stand before it) */
        lengths[count] = snprintf(spelled[count], sizeof spelled[count], "%lo", number);
        count++;
    }
    char first_text[5], second_text[5];
    Py_ssize_t first_length, second_length;
    if (upper == 0 || upper == 0xFFFF) { /* as is or inverted, a zero group: any colon */
        memcpy(first_text, "ffff:", 5);
        first_length = 5;
        second_text[0] = ':';
        second_length = 1;
    }
    else {
        first_length = hex_group(upper, first_text);
        first_text[first_length++] = ':';
        second_length = hex_group(upper ^ 0xFFFF, second_text);
        second_text[second_length++] = ':';
    }
    Py_ssize_t size = count + 3;
    PyObject *forms = PyTuple_New(size);
    if (forms == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item;
        if (i < count) {
            item = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, spelled[i], lengths[i]);
        }
        else if (i == count) {
            item = PyBytes_FromStringAndSize(first_text, first_length);
        }
        else if (i == count + 1) {
            item = PyBytes_FromStringAndSize(second_text, second_length);
        }
        else {
            item = PyBytes_FromStringAndSize("ff9b:", 5); /* gateway.guard._NAT64_ANCHOR */
        }
        if (item == NULL) {
            Py_DECREF(forms); /* (the items not set yet are NULL: skipped) */
            return NULL;
        }
        PyTuple_SET_ITEM(forms, i, item);
    }
    return forms;
}

/* One part of a dotted IPv4 text, as `inet_aton` or a person reads it
 * (gateway.guard._part_readings): hex after `0x`; with a leading zero, octal (when its digits
 * are) and decimal; else decimal. The count of readings in `out`. */
static int
part_readings(const unsigned char *part, Py_ssize_t length, uint64_t out[2])
{
    if (length >= 2 && part[0] == '0' && part[1] == 'x') {
        uint64_t value = 0;
        for (Py_ssize_t k = 2; k < length; k++) {
            unsigned c = part[k];
            value = value * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[0] = value;
        return 1;
    }
    uint64_t decimal = 0, octal = 0;
    int is_octal = 1;
    for (Py_ssize_t k = 0; k < length; k++) {
        decimal = decimal * 10 + (part[k] - '0');
        octal = octal * 8 + (part[k] - '0');
        is_octal &= part[k] <= '7';
    }
    out[0] = decimal;
    if (length > 1 && part[0] == '0' && is_octal) {
        out[1] = octal;
        return 2;
    }
    return 1;
}

static int
is_alnum_low(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

/* Whether the candidate run starting at `i` (a digit not written against a letter, digit or
 * dot) reads as one of `targets` (gateway.guard._aton_spans: the same parts and readings; the
 * plain forms, four decimal parts without a leading zero or one decimal number, are left to
 * the needles). `*run_end` is set past the run of letters, digits and dots it starts. */
static int
aton_candidate(const unsigned char *low, Py_ssize_t n, Py_ssize_t i, const uint32_t *targets,
               int count_targets)
{
    Py_ssize_t starts[4], lengths[4];
    int parts = 0;
    Py_ssize_t at = i;
    for (;;) {
        Py_ssize_t begin = at;
        if (at + 1 < n && low[at] == '0' && low[at + 1] == 'x') {
            at += 2;
            while (at < n && is_hex_low(low[at])) {
                at++;
            }
        }
        else {
            while (at < n && low[at] >= '0' && low[at] <= '9') {
                at++;
            }
        }
        starts[parts] = begin;
        lengths[parts++] = at - begin;
        if (parts < 4 && at + 1 < n && low[at] == '.' && low[at + 1] >= '0' && low[at + 1] <= '9') {
            at++;
            continue;
        }
        break;
    }
    /* not followed by a letter or digit, nor by a dot and one */
    if (at < n && (is_alnum_low(low[at]) || (low[at] == '.' && at + 1 < n && is_alnum_low(low[at + 1])))) {
        return 0;
    }
    int plain = 1;
    for (int k = 0; k < parts; k++) {
        Py_ssize_t from = starts[k], to = starts[k] + lengths[k];
        if (lengths[k] >= 2 && low[from] == '0' && low[from + 1] == 'x') {
            from += 2;
        }
        while (from < to && low[from] == '0') { /* leading zeros: any number of them */
            from++;
        }
        if (to - from > 12) { /* (no IPv4 part has that many significant digits) */
            return 0;
        }
        if (low[starts[k]] == '0' && lengths[k] > 1) {
            plain = 0;
        }
    }
    if (plain && (parts == 1 || parts == 4)) {
        return 0;
    }
    if (plain) { /* a shortened form whose last part fits a byte (`10.1`): a version, a price */
        uint64_t last[2];
        part_readings(low + starts[parts - 1], lengths[parts - 1], last);
        if (last[0] < 256) {
            return 0;
        }
    }
    if (parts > 1) { /* the first part is the top byte: one of the targets' (a quick reject) */
        uint64_t first[2];
        int m = part_readings(low + starts[0], lengths[0], first), top = 0;
        for (int v = 0; v < m && !top; v++) {
            for (int t = 0; t < count_targets; t++) {
                top |= first[v] == targets[t] >> 24;
            }
        }
        if (!top) {
            return 0;
        }
    }
    uint64_t readings[16], next[16];
    int count = 1;
    readings[0] = 0;
    int last_bits = 8 * (5 - parts);
    for (int k = 0; k < parts; k++) {
        uint64_t values[2];
        int m = part_readings(low + starts[k], lengths[k], values);
        int last = k == parts - 1;
        uint64_t limit = last ? ((uint64_t)1 << last_bits) : 256;
        int shift = last ? 0 : 8 * (3 - k);
        int made = 0;
        for (int r = 0; r < count; r++) {
            for (int v = 0; v < m; v++) {
                if (values[v] < limit) {
                    next[made++] = readings[r] + (values[v] << shift);
                }
            }
        }
        memcpy(readings, next, sizeof(uint64_t) * (size_t)made);
        count = made;
    }
    for (int r = 0; r < count; r++) {
        for (int t = 0; t < count_targets; t++) {
            if (readings[r] == targets[t]) {
                return 1;
            }
        }
    }
    return 0;
}

/* Whether lower-cased text writes one of `targets` (IPv4 addresses as numbers) in a form
 * `inet_aton` or a person reads and the needles do not hold (gateway.guard._aton_spans).
 * Only runs holding a dot, or a number with a leading zero, can be such a form: the dots are
 * found with `memchr`, and a number with a leading zero that is one part is octal, whose digits
 * are the IP's octal needle (`ipv4_forms`), so the count finds it. */
static int
aton_in(const unsigned char *low, Py_ssize_t n, const uint32_t *targets, int count_targets)
{
    Py_ssize_t done = 0; /* runs before this were read */
    const unsigned char *dot = low;
    while ((dot = memchr(dot, '.', (size_t)(n - (dot - low)))) != NULL) {
        Py_ssize_t at = dot - low;
        dot++;
        /* a dot between two parts: a digit or hex letter before it (`0x7f.1`), a digit after
         * it (`www.example.com`: not read) */
        if (at < done || at == 0 || at + 1 >= n
            || !(is_hex_low(low[at - 1]) || low[at - 1] == 'x')
            || !(low[at + 1] >= '0' && low[at + 1] <= '9')) {
            continue;
        }
        Py_ssize_t start = at;
        while (start > 0 && (is_alnum_low(low[start - 1]) || low[start - 1] == '.')) {
            start--;
        }
        Py_ssize_t end = at;
        while (end < n && (is_alnum_low(low[end]) || low[end] == '.')) {
            end++;
        }
        done = end; /* each run is read once: its candidate starts at its start */
        if (low[start] >= '0' && low[start] <= '9'
            && aton_candidate(low, n, start, targets, count_targets)) {
            return 1;
        }
    }
    return 0;
}

/* An ASCII character `str.isspace` takes: tab to carriage return, the separators, space. */
static int
is_space(unsigned char c)
{
    return (c >= 9 && c <= 13) || (c >= 28 && c <= 32);
}

/* Whether a value is a decimal number: `[-+]?[0-9]+(\.[0-9]+)?` (gateway.guard._NUMERIC). */
static int
is_numeric(const unsigned char *value, Py_ssize_t m)
{
    Py_ssize_t k = value[0] == '-' || value[0] == '+', digits = 0;
    for (; k < m && value[k] >= '0' && value[k] <= '9'; k++) {
        digits++;
    }
    if (digits == 0) {
        return 0;
    }
    if (k < m && value[k] == '.') {
        Py_ssize_t fraction = 0;
        for (k++; k < m && value[k] >= '0' && value[k] <= '9'; k++) {
            fraction++;
        }
        if (fraction == 0) {
            return 0;
        }
    }
    return k == m;
}

/* Whether JSON text without escapes holds a number: outside strings, the only tokens that
 * start with `-` or a digit (gateway.guard._JSON_NUMBER). */
static int
has_number(const unsigned char *text, Py_ssize_t n)
{
    int in_string = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = text[i];
        if (c == '"') {
            in_string ^= 1;
        }
        else if (!in_string && (c == '-' || (c >= '0' && c <= '9'))) {
            return 1;
        }
    }
    return 0;
}

/* An ASCII str's characters, or NULL (no exception) for anything else or an empty str. */
static const unsigned char *
ascii_of(PyObject *text, Py_ssize_t *length)
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text)) {
        return NULL;
    }
    *length = PyUnicode_GET_LENGTH(text);
    return *length ? (const unsigned char *)PyUnicode_DATA(text) : NULL;
}

/* The folded str of an ASCII str (new reference), and in *spelled its characters: itself and
 * `data` when it has no capital letter (most identifiers), else a lower-cased copy in `low`. */
static PyObject *
folded(PyObject *text, const unsigned char *data, Py_ssize_t m, unsigned char *low,
       const unsigned char **spelled)
{
    Py_ssize_t k = 0;
    while (k < m && (unsigned char)(data[k] - 'A') >= 26u) {
        k++;
    }
    if (k == m) {
        *spelled = data;
        return Py_NewRef(text);
    }
    lower_ascii(data, m, low);
    *spelled = low;
    return PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, low, m);
}

static int
set_bytes(char **target, Py_ssize_t *target_len, PyObject *source)
{
    char *data;
    Py_ssize_t length;
    if (PyBytes_AsStringAndSize(source, &data, &length) < 0) {
        return -1;
    }
    *target = PyMem_Malloc((size_t)length + 1);
    if (*target == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(*target, data, (size_t)length);
    (*target)[length] = '\0';
    *target_len = length;
    return 0;
}

static int
set_chars(unsigned char *table, PyObject *chars)
{
    Py_ssize_t length;
    if (!PyUnicode_Check(chars)) {
        PyErr_SetString(PyExc_TypeError, "expected a str of characters");
        return -1;
    }
    length = PyUnicode_GET_LENGTH(chars);
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(chars, i);
        if (c < 128) { /* values are ASCII here: other characters never occur in them */
            table[c] = 1;
        }
    }
    return 0;
}

static int
Scanner_init(Scanner *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"names",         "joiners",  "alphabet",   "pieces",
                               "has_risk",      "id_fields", "ip_field",   "forms_cache",
                               "written_cache", "forms_of", "written_of", "guarded_type",
                               "no_hits",       "ip_alphabet", "native_ipv4", "cache_size",
                               NULL};
    PyObject *names, *joiners, *alphabet, *pieces, *id_fields, *ip_field, *forms, *written;
    PyObject *forms_of, *written_of, *guarded_type, *no_hits, *ip_alphabet = NULL;
    int has_risk, native_ipv4 = 0;
    Py_ssize_t cache_size = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "SUUO!pO!UO!O!OOO!O|Upn", keywords, &names,
                                     &joiners, &alphabet, &PyFrozenSet_Type, &pieces, &has_risk,
                                     &PyTuple_Type, &id_fields, &ip_field, &PyDict_Type, &forms,
                                     &PyDict_Type, &written, &forms_of, &written_of,
                                     &PyType_Type, &guarded_type, &no_hits, &ip_alphabet,
                                     &native_ipv4, &cache_size)) {
        return -1;
    }
    if (!PyCallable_Check(forms_of) || !PyCallable_Check(written_of)
        || !PyType_IsSubtype((PyTypeObject *)guarded_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "forms_of, written_of: callables; guarded_type: a tuple");
        return -1;
    }
    if (self->names != NULL || self->pieces != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is initialised once");
        return -1;
    }
    memset(self->joiners, 0, sizeof self->joiners);
    memset(self->alphabet, 0, sizeof self->alphabet);
    memset(self->ip_alphabet, 0, sizeof self->ip_alphabet);
    if (ip_alphabet != NULL && set_chars(self->ip_alphabet, ip_alphabet) < 0) {
        return -1;
    }
    self->has_ip_alphabet = 0;
    for (int c = 0; c < 256; c++) {
        self->has_ip_alphabet |= self->ip_alphabet[c];
    }
    self->native_ipv4 = native_ipv4;
    self->cache_size = cache_size;
    if (set_chars(self->joiners, joiners) < 0 || set_chars(self->alphabet, alphabet) < 0) {
        return -1;
    }
    self->has_alphabet = 0;
    for (int c = 0; c < 256; c++) {
        self->has_alphabet |= self->alphabet[c];
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(id_fields); i++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(id_fields, i))) {
            PyErr_SetString(PyExc_TypeError, "id_fields: a tuple of str");
            return -1;
        }
    }
    if (PyTuple_GET_SIZE(id_fields) > MAX_VALUES) {
        PyErr_SetString(PyExc_ValueError, "id_fields: at most 16");
        return -1;
    }
    self->pieces = Py_NewRef(pieces);
    memset(self->ends, 0, sizeof self->ends);
    memset(self->pairs, 0, sizeof self->pairs);
    self->longest_piece = 0;
    PyObject *iterator = PyObject_GetIter(pieces);
    if (iterator == NULL) {
        return -1;
    }
    PyObject *piece;
    while ((piece = PyIter_Next(iterator)) != NULL) {
        Py_ssize_t length;
        const unsigned char *data = ascii_of(piece, &length);
        if (data != NULL) { /* other pieces never equal an ASCII value */
            self->ends[data[0]][data[length - 1]] = 1;
            for (Py_ssize_t k = 0; k + 1 < length; k++) {
                self->pairs[data[k]][data[k + 1] >> 6] |= (uint64_t)1 << (data[k + 1] & 63);
            }
            if (length > self->longest_piece) {
                self->longest_piece = length;
            }
        }
        Py_DECREF(piece);
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        return -1;
    }
    self->has_risk = has_risk;
    self->id_fields = Py_NewRef(id_fields);
    self->ip_field = Py_NewRef(ip_field);
    self->forms_cache = Py_NewRef(forms);
    self->written_cache = Py_NewRef(written);
    self->forms_of = Py_NewRef(forms_of);
    self->written_of = Py_NewRef(written_of);
    self->guarded_type = Py_NewRef(guarded_type);
    self->no_hits = Py_NewRef(no_hits);
    if (set_bytes(&self->names, &self->names_len, names) < 0) {
        return -1;
    }
    /* `names`: lower-case names joined by NUL, sorted, each starting with a letter */
    Py_ssize_t at = 0;
    char previous = 'a';
    for (int letter = 0; letter <= 26; letter++) {
        while (at < self->names_len && (unsigned char)self->names[at] < 'a' + letter) {
            if (self->names[at] < previous || self->names[at] > 'z') {
                PyErr_SetString(PyExc_ValueError, "names: sorted, lower case, NUL-separated");
                return -1;
            }
            previous = self->names[at];
            at += (Py_ssize_t)strlen(self->names + at) + 1;
        }
        self->first[letter] = at < self->names_len ? at : self->names_len;
    }
    self->ready = 1;
    return 0;
}

static void
Scanner_dealloc(Scanner *self)
{
    Py_XDECREF(self->pieces);
    Py_XDECREF(self->id_fields);
    Py_XDECREF(self->ip_field);
    Py_XDECREF(self->forms_cache);
    Py_XDECREF(self->written_cache);
    Py_XDECREF(self->forms_of);
    Py_XDECREF(self->written_of);
    Py_XDECREF(self->guarded_type);
    Py_XDECREF(self->no_hits);
    PyMem_Free(self->names);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(scan_event_doc,
"scan_event(canonical, fields, guard, /) -> GuardedInput | int | None\n\n"
"`canonical`: the event's JSON (bytes); `fields`: the event (dict); `guard`: the ValueGuard.\n"
"The identifier values are read from `fields` (`id_fields`, then `ip_field`), the IP's other\n"
"spellings from `forms_cache` (else `forms_of(guard, ip)`: str spellings, then bytes anchors,\n"
"pieces that every spelling of the IP holds, counted like a spelling but not one), whether an\n"
"operator could write the\n"
"IP from `written_cache` (else `written_of(guard, ip, forms)`, asked only for an input that is\n"
"otherwise proven). A GuardedInput when each value occurs exactly once and no at-sign or\n"
"encoding mark occurs (proven when, with a risk, no value is writable); else the flags (int:\n"
"MARKS, REPEATED, WRITABLE) for the caller's close look; None (declined) when the JSON is not\n"
"ASCII without a backslash, a value is not a str of at most 256 characters, or the arguments\n"
"are of other types: the caller runs the Python definition.");

/* One identifier value of `fields`: a new reference to a non-empty str, NULL for none (absent,
 * None or empty), or `Py_NotImplemented` (not a str: unhandled; not a new reference). 1 in
 * *error on an error. A new reference: a later lookup in the dict may run code (a key's own
 * `__eq__`) that drops the dict's. */
static PyObject *
value_of(PyObject *fields, PyObject *name, int *error)
{
    PyObject *value = PyDict_GetItemWithError(fields, name);
    if (value == NULL) {
        *error = PyErr_Occurred() != NULL;
        return NULL;
    }
    if (value == Py_None || (PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) == 0)) {
        return NULL;
    }
    return PyUnicode_CheckExact(value) ? Py_NewRef(value) : Py_NotImplemented;
}

static PyObject *scan_values(Scanner *self, PyObject *canonical, PyObject *fields,
                             PyObject *guard, PyObject **values, Py_ssize_t count_values,
                             PyObject *ip, PyObject *forms, int host_bits);

static PyObject *
Scanner_scan_event(Scanner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner: not initialised");
        return NULL;
    }
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "scan_event(canonical, fields, guard)");
        return NULL;
    }
    PyObject *canonical = args[0], *fields = args[1], *guard = args[2];
    if (!PyBytes_CheckExact(canonical) || !PyDict_CheckExact(fields)) {
        Py_RETURN_NONE; /* declined: the Python definition takes any bytes-like and mapping */
    }
    PyObject *values[MAX_VALUES];
    Py_ssize_t count_values = 0;
    PyObject *ip = NULL, *forms = NULL, *result = NULL;
    int error = 0;
    Py_ssize_t count_fields = PyTuple_GET_SIZE(self->id_fields);
    for (Py_ssize_t i = 0; i < count_fields; i++) {
        PyObject *value = value_of(fields, PyTuple_GET_ITEM(self->id_fields, i), &error);
        if (error) {
            goto done;
        }
        if (value == Py_NotImplemented) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        if (value != NULL) {
            values[count_values++] = value;
        }
    }
    ip = value_of(fields, self->ip_field, &error);
    if (error) {
        goto done;
    }
    if (ip == Py_NotImplemented) {
        ip = NULL;
        result = Py_NewRef(Py_None);
        goto done;
    }
    int host_bits = -1; /* 1: the address's host bits are surely set (see scan_values) */
    unsigned char v4[4];
    Py_ssize_t ip_length;
    const unsigned char *ip_data = ip == NULL ? NULL : ascii_of(ip, &ip_length);
    if (ip_data != NULL && self->native_ipv4 && parse_ipv4(ip_data, ip_length, v4)) {
        host_bits = v4[3] % 4 != 0;
        forms = PyDict_GetItemWithError(self->forms_cache, ip);
        if (forms != NULL) {
            Py_INCREF(forms);
        }
        else if (PyErr_Occurred()) {
            goto done;
        }
        else { /* a new address: read here, remembered while the cache has room */
            forms = ipv4_forms(v4);
            if (forms == NULL) {
                goto done;
            }
            if (PyDict_GET_SIZE(self->forms_cache) < self->cache_size
                && PyDict_SetItem(self->forms_cache, ip, forms) < 0) {
                goto done;
            }
        }
    }
    else if (ip != NULL) {
        forms = PyDict_GetItemWithError(self->forms_cache, ip);
        if (forms != NULL) {
            Py_INCREF(forms);
        }
        else if (PyErr_Occurred()) {
            goto done;
        }
        else {
            if (ip_data != NULL && self->native_ipv4 && ip_length < 46) {
                unsigned char low[46]; /* an IPv6 address without an IPv4 one: read here */
                lower_ascii(ip_data, ip_length, low);
                forms = ipv6_forms(ip_data, ip_length, low);
                if (forms == NULL && PyErr_Occurred()) {
                    goto done;
                }
                if (forms != NULL && PyDict_GET_SIZE(self->forms_cache) < self->cache_size
                    && PyDict_SetItem(self->forms_cache, ip, forms) < 0) {
                    goto done;
                }
            }
            if (forms == NULL) { /* its spellings, computed and remembered in Python */
                forms = PyObject_CallFunctionObjArgs(self->forms_of, guard, ip, NULL);
                if (forms == NULL) {
                    goto done;
                }
            }
        }
        if (!PyTuple_CheckExact(forms)) {
            PyErr_SetString(PyExc_TypeError, "forms_of: a tuple of str");
            goto done;
        }
        if (ip_data != NULL && self->native_ipv4 && host_bits_surely_set(ip_data, ip_length)
            && !carries_dotted(forms)) {
            host_bits = 1;
        }
    }
    result = scan_values(self, canonical, fields, guard, values, count_values, ip, forms, host_bits);
done:
    for (Py_ssize_t i = 0; i < count_values; i++) {
        Py_DECREF(values[i]);
    }
    Py_XDECREF(ip);
    Py_XDECREF(forms);
    return result;
}

/* The scan of one event's text for its values (`values`, `ip`: new references the caller
 * keeps; `forms`: the IP's other spellings, or NULL without an IP). */
static PyObject *
scan_values(Scanner *self, PyObject *canonical, PyObject *fields, PyObject *guard,
            PyObject **values, Py_ssize_t count_values, PyObject *ip, PyObject *forms,
            int host_bits)
{
    long flags = 0;
    Py_ssize_t count_forms = forms == NULL ? 0 : PyTuple_GET_SIZE(forms);
    Py_ssize_t n = PyBytes_GET_SIZE(canonical);
    Buffer buffer; /* not zeroed: its stack part is written before it is read */
    buffer.data = NULL;
    PyObject *spellings = NULL;
    Needle stack_needles[48];
    Needle *needles = stack_needles; /* on the heap for more */
    unsigned char *low = buffer_get(&buffer, n);
    if (low == NULL) {
        return NULL;
    }
    unsigned seen = lower_ascii((const unsigned char *)PyBytes_AS_STRING(canonical), n, low);
    if (seen & (SEEN_NON_ASCII | SEEN_ESCAPE)) {
        goto unhandled;
    }
    /* forms: str spellings, then bytes anchors (pieces every spelling holds: counted only) */
    Py_ssize_t count_spelled_forms = 0;
    for (Py_ssize_t i = 0; i < count_forms; i++) {
        count_spelled_forms += !PyBytes_CheckExact(PyTuple_GET_ITEM(forms, i));
    }
    spellings = PyTuple_New(count_values + (ip != NULL) + count_spelled_forms);
    if (spellings == NULL) {
        goto error;
    }
    unsigned char small[256];
    int numeric = 0; /* a value is a decimal number */
    /* every needle counted in one pass: the values, the IP, its anchors and its spellings */
    Py_ssize_t count_needles = count_values + (ip != NULL) + count_forms;
    if (count_needles > (Py_ssize_t)(sizeof stack_needles / sizeof *stack_needles)) {
        needles = PyMem_Malloc((size_t)count_needles * sizeof *needles);
        if (needles == NULL) {
            PyErr_NoMemory();
            goto error;
        }
    }
    for (Py_ssize_t i = 0; i < count_values; i++) {
        Py_ssize_t m;
        const unsigned char *data = ascii_of(values[i], &m);
        if (data == NULL || m > (Py_ssize_t)sizeof small) {
            goto unhandled;
        }
        const unsigned char *spelled;
        PyObject *spelling = folded(values[i], data, m, small, &spelled);
        if (spelling == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(spellings, i, spelling);
        /* (its own characters: `small` is the next value's) */
        needles[i] = (Needle){(const unsigned char *)PyUnicode_DATA(spelling), m, 0, 0};
        numeric |= is_numeric(data, m);
        if (is_space(data[0]) || is_space(data[m - 1])) { /* its trimmed self may be elsewhere */
            flags |= FLAG_REPEATED;
        }
        /* a `+` in the text may stand for a value's space (or a value's `+` for a space) */
        if ((seen & SEEN_PLUS) && (memchr(data, ' ', m) != NULL || memchr(data, '+', m) != NULL)) {
            flags |= FLAG_REPEATED;
        }
        if (!(flags & FLAG_WRITABLE)) {
            int written = writable(self, spelling, spelled, m);
            if (written < 0) {
                goto error;
            }
            flags |= written ? FLAG_WRITABLE : 0;
        }
    }
    const unsigned char *ip_spelled = NULL;
    Py_ssize_t ip_length = 0;
    if (ip != NULL) {
        const unsigned char *data = ascii_of(ip, &ip_length);
        if (data == NULL || ip_length > (Py_ssize_t)sizeof small) {
            goto unhandled;
        }
        PyObject *spelling = folded(ip, data, ip_length, small, &ip_spelled);
        if (spelling == NULL) {
            goto error;
        }
        Py_ssize_t slot = count_values;
        PyTuple_SET_ITEM(spellings, slot++, spelling);
        ip_spelled = (const unsigned char *)PyUnicode_DATA(spelling);
        needles[count_values] = (Needle){ip_spelled, ip_length, 0, 0};
        if ((seen & SEEN_PLUS)
            && (memchr(data, ' ', ip_length) != NULL || memchr(data, '+', ip_length) != NULL)) {
            flags |= FLAG_REPEATED; /* (as for the other values) */
        }
        /* its forms: str spellings (also the output's needles) and bytes anchors (pieces every
         * spelling holds: counted, not spellings) */
        for (Py_ssize_t i = 0; i < count_forms; i++) {
            PyObject *form = PyTuple_GET_ITEM(forms, i);
            Needle *needle = &needles[count_values + 1 + i];
            if (PyBytes_CheckExact(form)) {
                *needle = (Needle){(const unsigned char *)PyBytes_AS_STRING(form),
                                   PyBytes_GET_SIZE(form), 0, 0};
            }
            else {
                Py_ssize_t f;
                const unsigned char *form_data = ascii_of(form, &f);
                if (form_data == NULL || slot >= PyTuple_GET_SIZE(spellings)) {
                    goto unhandled;
                }
                PyTuple_SET_ITEM(spellings, slot++, Py_NewRef(form));
                *needle = (Needle){form_data, f, 0, 0};
            }
            if (needle->length == 0) {
                goto unhandled;
            }
        }
    }
    count_many(low, n, needles, count_needles);
    if (ip != NULL && !(flags & FLAG_REPEATED)) {
        /* the IP (or an IPv4 address it carries: its dotted spellings) in a form `inet_aton` or
         * a person reads that no needle holds (`aton_in`): the close look replaces it */
        uint32_t targets[40]; /* (at most 16 addresses, each with its Teredo-inverted form) */
        int count_targets = 0, own_ipv4 = 0;
        unsigned char own[4];
        if (parse_ipv4(ip_spelled, ip_length, own)) { /* an IPv4 address: itself */
            targets[count_targets++] = (uint32_t)own[0] << 24 | (uint32_t)own[1] << 16
                                       | (uint32_t)own[2] << 8 | own[3];
            own_ipv4 = 1;
        }
        /* else those it holds or carries (its dotted spellings) */
        for (Py_ssize_t i = count_values + 1;
             !own_ipv4 && count_targets < 40 && i < PyTuple_GET_SIZE(spellings); i++) {
            PyObject *spelling = PyTuple_GET_ITEM(spellings, i);
            unsigned char v4[4];
            if (spelling != NULL && PyUnicode_Check(spelling)
                && parse_ipv4((const unsigned char *)PyUnicode_DATA(spelling),
                              PyUnicode_GET_LENGTH(spelling), v4)) {
                targets[count_targets++] = (uint32_t)v4[0] << 24 | (uint32_t)v4[1] << 16
                                           | (uint32_t)v4[2] << 8 | v4[3];
            }
        }
        if (count_targets && aton_in(low, n, targets, count_targets)) {
            flags |= FLAG_REPEATED;
        }
    }
    for (Py_ssize_t i = 0; i < count_values + (ip != NULL); i++) {
        if (needles[i].count != 1) { /* each value exactly once: in its own field */
            flags |= FLAG_REPEATED;
        }
    }
    for (Py_ssize_t i = count_values + 1; i < count_needles; i++) {
        /* another spelling of the IP (or an anchor): only where the IP's own spelling holds it */
        Py_ssize_t found = needles[i].count;
        if (found && found != count_in(ip_spelled, ip_length, needles[i].data, needles[i].length)) {
            flags |= FLAG_REPEATED;
        }
    }
    if (needles != stack_needles) {
        PyMem_Free(needles);
        needles = stack_needles;
    }
    if (numeric && has_number(low, n)) { /* a number may be a value by value (`1e16`) */
        flags |= FLAG_REPEATED;
    }
    if (has_marks(self, low, n, seen)) {
        flags |= FLAG_MARKS;
    }
    buffer_free(&buffer);
    if (flags & (FLAG_MARKS | FLAG_REPEATED)) { /* the caller looks closely */
        Py_DECREF(spellings);
        return PyLong_FromLong(flags);
    }
    int proven = self->has_risk && !(flags & FLAG_WRITABLE);
    if (proven && host_bits == 1) { /* no truncation can write it: its spellings decide */
        for (Py_ssize_t i = count_values; i < PyTuple_GET_SIZE(spellings) && proven; i++) {
            /* the address as one number, not the IP's own text: an operator writes it only by
             * chance (gateway.guard.SynthesisRisk.ip_writable) */
            if (i > count_values && is_number_form(PyTuple_GET_ITEM(spellings, i))) {
                continue;
            }
            int written = ip_spelling_writable(self, PyTuple_GET_ITEM(spellings, i));
            if (written < 0) {
                Py_DECREF(spellings);
                return NULL;
            }
            proven = !written;
        }
    }
    else if (proven && ip != NULL) { /* asked last: it may cost a truncation per new address */
        PyObject *written = PyDict_GetItemWithError(self->written_cache, ip);
        if (written != NULL) {
            Py_INCREF(written);
        }
        else if (!PyErr_Occurred()) {
            written = PyObject_CallFunctionObjArgs(self->written_of, guard, ip, forms, NULL);
        }
        int truth = written == NULL ? -1 : PyObject_IsTrue(written);
        Py_XDECREF(written);
        if (truth < 0) {
            Py_DECREF(spellings);
            return NULL;
        }
        proven = !truth;
    }
    /* GuardedInput(fields, spellings, hits, source, guard, marks_free, proven) */
    PyTypeObject *type = (PyTypeObject *)self->guarded_type;
    PyObject *guarded = type->tp_alloc(type, 7);
    if (guarded == NULL) {
        Py_DECREF(spellings);
        return NULL;
    }
    PyTuple_SET_ITEM(guarded, 0, Py_NewRef(fields));
    PyTuple_SET_ITEM(guarded, 1, spellings);
    PyTuple_SET_ITEM(guarded, 2, Py_NewRef(self->no_hits));
    PyTuple_SET_ITEM(guarded, 3, Py_NewRef(fields));
    PyTuple_SET_ITEM(guarded, 4, Py_NewRef(guard));
    PyTuple_SET_ITEM(guarded, 5, Py_NewRef(Py_True));
    PyTuple_SET_ITEM(guarded, 6, Py_NewRef(proven ? Py_True : Py_False));
    return guarded;

unhandled:
    buffer_free(&buffer);
    Py_XDECREF(spellings);
    if (needles != stack_needles) {
        PyMem_Free(needles);
    }
    Py_RETURN_NONE;
error:
    buffer_free(&buffer);
    Py_XDECREF(spellings);
    if (needles != stack_needles) {
        PyMem_Free(needles);
    }
    return NULL;
}

PyDoc_STRVAR(output_clean_doc,
"output_clean(text, spellings, marks, /) -> bool | None\n\n"
"`text`: a serialized output (bytes); `spellings`: folded JSON spellings (tuple of str). True\n"
"when the text, lower-cased, holds none of them and (when `marks`) no at-sign in any spelling;\n"
"None (declined) when the text is not ASCII or the arguments are of other types: the caller\n"
"runs gateway.guard.output_clean.");

static PyObject *
output_clean(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "output_clean(text, spellings, marks)");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        Py_RETURN_NONE; /* declined: the Python definition takes any bytes-like and iterable */
    }
    int marks = PyObject_IsTrue(args[2]);
    if (marks < 0) {
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    Buffer buffer; /* not zeroed: its stack part is written before it is read */
    buffer.data = NULL;
    unsigned char *low = buffer_get(&buffer, n);
    if (low == NULL) {
        return NULL;
    }
    PyObject *result = Py_True;
    if (lower_ascii((const unsigned char *)PyBytes_AS_STRING(args[0]), n, low) & SEEN_NON_ASCII) {
        result = Py_None;
    }
    else if (marks && has_at_sign(low, n)) {
        result = Py_False;
    }
    else {
        PyObject *spellings = args[1];
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(spellings); i++) {
            PyObject *spelling = PyTuple_GET_ITEM(spellings, i);
            Py_ssize_t m;
            const char *data;
            if (!PyUnicode_CheckExact(spelling)) {
                result = Py_None; /* declined */
                break;
            }
            /* UTF-8: a non-ASCII spelling cannot occur in ASCII text, nor match in it */
            data = PyUnicode_AsUTF8AndSize(spelling, &m);
            if (data == NULL) {
                buffer_free(&buffer);
                return NULL;
            }
            if (m == 0 || contains(low, n, (const unsigned char *)data, m)) {
                result = Py_False;
                break;
            }
        }
    }
    buffer_free(&buffer);
    return Py_NewRef(result);
}

/* A scanner bound to its guard: `prepare(fields, canonical)` as one C call, so the fast path
 * runs no Python frame (gateway.guard.ValueGuard.preparer). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Scanner *scanner;
    PyObject *guard;
    PyObject *after_scan; /* after_scan(guard, fields, canonical, scanned) -> GuardedInput */
    PyObject *latest;     /* list of one: where the guard keeps the last event it prepared */
} Preparer;

static PyObject *
Preparer_vectorcall(Preparer *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (kwnames != NULL || PyVectorcall_NARGS(nargsf) != 2) {
        PyErr_SetString(PyExc_TypeError, "prepare(fields, canonical)");
        return NULL;
    }
    PyObject *fields = args[0], *canonical = args[1];
    PyObject *scanned;
    if (canonical == Py_None) { /* computed by the Python definition */
        scanned = Py_NewRef(Py_None);
    }
    else {
        PyObject *scan_args[3] = {canonical, fields, self->guard};
        scanned = Scanner_scan_event(self->scanner, scan_args, 3);
        if (scanned == NULL) {
            return NULL;
        }
        if (Py_TYPE(scanned) == (PyTypeObject *)self->scanner->guarded_type) {
            if (PyList_GET_SIZE(self->latest) != 1) {
                PyErr_SetString(PyExc_RuntimeError, "prepare: the guard's latest is a list of one");
                Py_DECREF(scanned);
                return NULL;
            }
            PyObject *previous = PyList_GET_ITEM(self->latest, 0);
            PyList_SET_ITEM(self->latest, 0, Py_NewRef(scanned));
            Py_XDECREF(previous); /* (after the store: its deallocation may run code) */
            return scanned;
        }
    }
    PyObject *result = PyObject_CallFunctionObjArgs(self->after_scan, self->guard, fields,
                                                    canonical, scanned, NULL);
    Py_DECREF(scanned);
    return result;
}

static void
Preparer_dealloc(Preparer *self)
{
    Py_XDECREF(self->scanner);
    Py_XDECREF(self->guard);
    Py_XDECREF(self->after_scan);
    Py_XDECREF(self->latest);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(Preparer_doc,
"A scanner bound to its guard (Scanner.bind): prepare(fields, canonical) -> GuardedInput.");

static PyTypeObject PreparerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gateway._guardscan.Preparer",
    .tp_basicsize = sizeof(Preparer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = Preparer_doc,
    .tp_dealloc = (destructor)Preparer_dealloc,
    .tp_vectorcall_offset = offsetof(Preparer, vectorcall),
    .tp_call = PyVectorcall_Call,
};

PyDoc_STRVAR(bind_doc,
"bind(guard, after_scan, latest, /) -> Preparer\n\n"
"`prepare(fields, canonical)` for `guard`: the scan, and on its fast path the GuardedInput\n"
"(also set as `latest[0]`, a list of one); otherwise `after_scan(guard, fields, canonical,\n"
"scanned)` answers (`scanned`: the flags, or None when declined or `canonical` is None).");

static PyObject *
Scanner_bind(Scanner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner: not initialised");
        return NULL;
    }
    if (nargs != 3 || !PyCallable_Check(args[1]) || !PyList_CheckExact(args[2])
        || PyList_GET_SIZE(args[2]) != 1) {
        PyErr_SetString(PyExc_TypeError,
                        "bind(guard, after_scan, latest): a callable, a list of one");
        return NULL;
    }
    Preparer *preparer = PyObject_New(Preparer, &PreparerType);
    if (preparer == NULL) {
        return NULL;
    }
    preparer->vectorcall = (vectorcallfunc)Preparer_vectorcall;
    preparer->scanner = (Scanner *)Py_NewRef(self);
    preparer->guard = Py_NewRef(args[0]);
    preparer->after_scan = Py_NewRef(args[1]);
    preparer->latest = Py_NewRef(args[2]);
    return (PyObject *)preparer;
}

static PyMethodDef Scanner_methods[] = {
    {"scan_event", (PyCFunction)(void (*)(void))Scanner_scan_event, METH_FASTCALL,
     scan_event_doc},
    {"bind", (PyCFunction)(void (*)(void))Scanner_bind, METH_FASTCALL, bind_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Scanner_doc,
"Scanner(names, joiners, alphabet, pieces, has_risk, id_fields, ip_field, forms_cache,\n"
"        written_cache, forms_of, written_of, guarded_type, no_hits, ip_alphabet='',\n"
"        native_ipv4=False, cache_size=0)\n\n"
"`names`: HTML's legacy reference names, lower case, sorted, joined by NUL (bytes);\n"
"`joiners`, `alphabet`: what operators write (str, gateway.guard.SynthesisRisk);\n"
"`pieces`: every piece of the operators' fixed texts, folded (frozenset of str);\n"
"`has_risk`: whether those are known (false: nothing is proven); `id_fields` (tuple of str)\n"
"and `ip_field` (str): the event's identifier fields; `forms_cache` (dict: IP -> tuple of\n"
"str, then bytes) and `written_cache` (dict: IP -> bool): the guard's caches, read;\n"
"`ip_alphabet` (str): what `SynthesisRisk.ip_writable` tests an address against; `native_ipv4`:\n"
"an IPv4 address's forms, an IPv6 one's without an IPv4 in it, and (host bits set) their\n"
"writability are read here, not asked of Python; `cache_size`: forms read here are added to\n"
"forms_cache while it holds fewer.");

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gateway._guardscan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Scanner_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

PyDoc_STRVAR(use_vectors_doc,
"_use_vectors(name, /) -> bool\n\n"
"Searches with 'avx2', 'sse2' or 'scalar' code from now on, and lower-cases with AVX2 code\n"
"for 'avx2' (the baseline build's otherwise); False (nothing changed) when this CPU or build\n"
"has no such code. For the tests: every path answers the same.");

static PyObject *
use_vectors(PyObject *module, PyObject *name)
{
    (void)module;
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "_use_vectors(str)");
        return NULL;
    }
    if (PyUnicode_CompareWithASCIIString(name, "scalar") == 0) {
        find_vectors = find_scalar;
        lower_ascii = lower_base;
        count_many = count_each;
        Py_RETURN_TRUE;
    }
#ifdef HAVE_X86
    if (PyUnicode_CompareWithASCIIString(name, "sse2") == 0) {
        find_vectors = find_sse2;
        lower_ascii = lower_base;
        count_many = count_each;
        Py_RETURN_TRUE;
    }
    if (PyUnicode_CompareWithASCIIString(name, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        find_vectors = find_avx2;
        lower_ascii = lower_avx2;
        count_many = count_many_avx2;
        Py_RETURN_TRUE;
    }
#endif
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(ipv4_forms_doc,
"_ipv4_forms(address, /) -> tuple | None\n\n"
"What the scanner reads for an IPv4 address (`ValueGuard._ip_forms`: its IPv4-mapped hex\n"
"groups, then its anchors); None for a str that is not one. For the tests.");

static PyObject *
ipv4_forms_of(PyObject *module, PyObject *address)
{
    (void)module;
    Py_ssize_t m;
    unsigned char v4[4];
    const unsigned char *data = ascii_of(address, &m);
    if (data == NULL || !parse_ipv4(data, m, v4)) {
        Py_RETURN_NONE;
    }
    return ipv4_forms(v4);
}

PyDoc_STRVAR(ipv6_forms_doc,
"_ipv6_forms(address, /) -> tuple | None\n\n"
"What the scanner reads for an IPv6 address without an IPv4 one in it (`ValueGuard._ip_forms`);\n"
"None for other text (Python answers). For the tests.");

static PyObject *
ipv6_forms_of(PyObject *module, PyObject *address)
{
    (void)module;
    Py_ssize_t m;
    unsigned char low[46];
    const unsigned char *data = ascii_of(address, &m);
    if (data == NULL || m >= 46) {
        Py_RETURN_NONE;
    }
    lower_ascii(data, m, low);
    PyObject *forms = ipv6_forms(data, m, low);
    if (forms == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return forms;
}

PyDoc_STRVAR(count_many_doc,
"_count_many(text, needles, /) -> tuple[int, ...]\n\n"
"Each needle's (non-empty bytes) non-overlapping occurrences in `text` (bytes), as the scan\n"
"counts them in one pass (bytes.count's answers). For the tests.");

static PyObject *
count_many_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_count_many(bytes, tuple of bytes)");
        return NULL;
    }
    Py_ssize_t k = PyTuple_GET_SIZE(args[1]);
    Needle *needles = PyMem_Malloc((size_t)(k ? k : 1) * sizeof *needles);
    if (needles == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *needle = PyTuple_GET_ITEM(args[1], i);
        if (!PyBytes_CheckExact(needle) || PyBytes_GET_SIZE(needle) == 0) {
            PyMem_Free(needles);
            PyErr_SetString(PyExc_ValueError, "needles: non-empty bytes");
            return NULL;
        }
        needles[i] = (Needle){(const unsigned char *)PyBytes_AS_STRING(needle),
                              PyBytes_GET_SIZE(needle), 0, 0};
    }
    count_many((const unsigned char *)PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
               needles, k);
    PyObject *counts = PyTuple_New(k);
    for (Py_ssize_t i = 0; counts != NULL && i < k; i++) {
        PyObject *count = PyLong_FromSsize_t(needles[i].count);
        if (count == NULL) {
            Py_CLEAR(counts);
            break;
        }
        PyTuple_SET_ITEM(counts, i, count);
    }
    PyMem_Free(needles);
    return counts;
}

static PyMethodDef module_methods[] = {
    {"_count_many", (PyCFunction)(void (*)(void))count_many_of, METH_FASTCALL, count_many_doc},
    {"output_clean", (PyCFunction)(void (*)(void))output_clean, METH_FASTCALL, output_clean_doc},
    {"_use_vectors", (PyCFunction)use_vectors, METH_O, use_vectors_doc},
    {"_ipv4_forms", (PyCFunction)ipv4_forms_of, METH_O, ipv4_forms_doc},
    {"_ipv6_forms", (PyCFunction)ipv6_forms_of, METH_O, ipv6_forms_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gateway._guardscan",
    .m_doc = "The value guard's scans over ASCII JSON (gateway/guard.py is the definition).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__guardscan(void)
{
#ifdef HAVE_X86
    __builtin_cpu_init();
    find_vectors = __builtin_cpu_supports("avx2") ? find_avx2 : find_sse2;
    lower_ascii = __builtin_cpu_supports("avx2") ? lower_avx2 : lower_base;
    count_many = __builtin_cpu_supports("avx2") ? count_many_avx2 : count_each;
#endif
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&PreparerType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Scanner", (PyObject *)&ScannerType) < 0
        || PyModule_AddIntConstant(m, "MARKS", FLAG_MARKS) < 0
        || PyModule_AddIntConstant(m, "REPEATED", FLAG_REPEATED) < 0
        || PyModule_AddIntConstant(m, "WRITABLE", FLAG_WRITABLE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
