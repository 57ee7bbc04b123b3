/* bench/http_ceiling.c - the HTTP ceiling row of bench/publish.
 *
 * libevhtp, the HTTP layer sluice is built on, answering every request 204 at once with no
 * broker behind it. Pinned where sluiced runs and driven by the same wrk with the same
 * requests, it shows what wrk and the HTTP layer alone cost on that core, before anything is
 * published: no gateway built on libevhtp, sluice included, can answer faster there, so it
 * bounds sluice / raw.
 *
 * usage: http_ceiling PORT        (binds 127.0.0.1:PORT; runs until killed)
 * build: cc -O2 -Wall -o http_ceiling bench/http_ceiling.c $(pkg-config --cflags --libs evhtp libevent)
 */
#include <evhtp.h>
#include <stdio.h>
#include <stdlib.h>

static void answer(evhtp_request_t *req, void *arg) {
  (void)arg;
  evhtp_send_reply(req, EVHTP_RES_NOCONTENT);
}

int main(int argc, char **argv) {
  char *end = NULL;
  long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
  if (argc != 2 || *end != '\0' || port < 1 || port > 65535) {
    fprintf(stderr, "usage: http_ceiling PORT\n");
    return 2;
  }
  struct event_base *base = event_base_new();
  evhtp_t *htp = base != NULL ? evhtp_new(base, NULL) : NULL;
  if (htp == NULL) {
    fprintf(stderr, "http_ceiling: out of memory\n");
    return 1;
  }
  evhtp_set_gencb(htp, answer, NULL);
  if (evhtp_bind_socket(htp, "ipv4:127.0.0.1", (uint16_t)port, 1024) != 0) {
    perror("http_ceiling: bind 127.0.0.1");
    return 1;
  }
  event_base_loop(base, 0);
  return 0;
}
