/*
 * trace_svg.c -- the timeline picture of a trace whose path ends in .svg:
 * one row per thread (the main thread first, then each worker), one bar
 * per task coloured by its outcome, the main thread's waits shaded
 * behind, and a time axis with round ticks. Plain SVG 1.1 that any
 * browser or image viewer shows. Written once, when the trace ends, from
 * what trace.c kept; no Lua and no lock (only the traced state's thread,
 * or the exit handler, calls it).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trace.h"

#define LEFT 190.0  /* room for the row names */
#define WIDTH 1000.0
#define ROWH 26.0
#define TOP 34.0

typedef struct out {
  int fd, err;
  char buf[8192];
  size_t len;
} out;

static void flush_out(out *o) {
  size_t off = 0;
  while (off < o->len && !o->err) {
    ssize_t n = write(o->fd, o->buf + off, o->len - off);
    if (n <= 0) o->err = 1;
    else off += (size_t)n;
  }
  o->len = 0;
}

static void say(out *o, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  if (o->len + (size_t)n > sizeof o->buf) flush_out(o);
  memcpy(o->buf + o->len, line, (size_t)n);
  o->len += (size_t)n;
}

/* Text from a task's source or a worker's name, made safe inside XML. */
static void escaped(char *dst, size_t cap, const char *s) {
  size_t j = 0;
  for (; *s && j + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    const char *rep = c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;"
                    : c == '"' ? "&quot;" : NULL;
    if (rep) {
      memcpy(dst + j, rep, strlen(rep));
      j += strlen(rep);
    } else if (c >= 0x20 && c < 0x7f) {
      dst[j++] = (char)c;
    } else {
      dst[j++] = '?'; /* bytes from a worker process need not be UTF-8 */
    }
  }
  dst[j] = '\0';
}

/* A round tick step: 1, 2 or 5 times a power of ten, about 8 per axis. */
static double tick_step(double span) {
  double raw = span / 8, p = 1;
  while (p > raw) p /= 10; /* no libm: the module links none */
  while (p * 10 <= raw) p *= 10;
  return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

static void axis(out *o, double span, double x_of, double bottom) {
  double step = tick_step(span);
  say(o, "<g class=\"axis\" font-size=\"11\" fill=\"#444\">\n");
  for (double t = 0; t <= span * 1.0001; t += step) {
    double x = LEFT + t * x_of;
    say(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
           "stroke=\"#ddd\"/>\n", x, TOP - 6, x, bottom);
    if (step >= 1)
      say(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g s</text>\n",
          x, TOP - 10, t);
    else
      say(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g ms</text>\n",
          x, TOP - 10, t * 1000);
  }
  say(o, "</g>\n");
}

static const char *const colour[] = {"#4c9a2a", "#c0392b", "#999999"};
static const char *const outcome_name[] = {"returned", "raised", "cancelled"};

int lfb_svg_write(int fd, const lfb_trow *rows, size_t nrows,
                  const lfb_tbar *bars, size_t nbars, double span) {
  out o = {.fd = fd};
  if (span <= 0) span = 1e-3;
  double x_of = (WIDTH - LEFT - 10) / span;
  double bottom = TOP + ROWH * (double)nrows;
  say(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
          "height=\"%.0f\" font-family=\"sans-serif\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      WIDTH, bottom + 30);
  axis(&o, span, x_of, bottom);
  char name[200];
  for (size_t r = 0; r < nrows; r++) {
    escaped(name, sizeof name, rows[r].name);
    double y = TOP + ROWH * (double)r;
    say(&o, "<text class=\"row\" x=\"6\" y=\"%.1f\" font-size=\"12\">%s</text>\n",
        y + ROWH * 0.65, name);
  }
  for (int pass = LFB_TEV_WAIT; pass >= LFB_TEV_TASK; pass--) /* waits behind */
    for (size_t i = 0; i < nbars; i++) {
      const lfb_tbar *b = &bars[i];
      if (b->kind != pass) continue;
      double x = LEFT + b->ts * x_of, w = b->dur * x_of;
      double y = TOP + ROWH * b->row;
      if (w < 1) w = 1; /* a cancelled task or a short one stays visible */
      escaped(name, sizeof name, b->label);
      if (pass == LFB_TEV_WAIT)
        say(&o, "<rect class=\"wait\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
                "height=\"%.1f\" fill=\"#b0c4de\" opacity=\"0.6\"><title>%s "
                "%.3f ms</title></rect>\n", x, y + 2, w, ROWH - 4, name,
            b->dur * 1e3);
      else
        say(&o, "<rect class=\"task\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
                "height=\"%.1f\" fill=\"%s\" stroke=\"white\" "
                "stroke-width=\"0.5\"><title>%s %s %.3f ms</title></rect>\n",
            x, y + 5, w, ROWH - 10, colour[b->outcome], name,
            outcome_name[b->outcome], b->dur * 1e3);
    }
  double ly = bottom + 18;
  for (int k = 0; k < 3; k++)
    say(&o, "<rect x=\"%.0f\" y=\"%.1f\" width=\"12\" height=\"12\" "
            "fill=\"%s\"/><text x=\"%.0f\" y=\"%.1f\" font-size=\"11\">%s"
            "</text>\n", LEFT + 110.0 * k, ly - 10, colour[k],
        LEFT + 110.0 * k + 16, ly, outcome_name[k]);
  say(&o, "<rect x=\"%.0f\" y=\"%.1f\" width=\"12\" height=\"12\" "
          "fill=\"#b0c4de\"/><text x=\"%.0f\" y=\"%.1f\" font-size=\"11\">"
          "waiting</text>\n</svg>\n", LEFT + 330, ly - 10, LEFT + 346, ly);
  flush_out(&o);
  return o.err ? -1 : 0;
}
