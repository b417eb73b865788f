/* The musl client of bench/dns.sh: getaddrinfo(NAME, AF_INET6, AI_ADDRCONFIG), as an app would
 * ask for an IPv6 address, printing each one. Built static with musl-gcc (Debian's musl-tools). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct addrinfo hints, *res, *p;
	char text[INET6_ADDRSTRLEN];
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 2;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET6;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(argv[1], NULL, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", argv[1], gai_strerror(rc));
		return 2;
	}
	for (p = res; p; p = p->ai_next) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)p->ai_addr;
		puts(inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text));
	}
	freeaddrinfo(res);
	return 0;
}
