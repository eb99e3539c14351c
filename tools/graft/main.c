/* PLACEHOLDER until the CLI lands. */
#include <stdio.h>
int main(void) { fputs("graft: not built yet\n", stderr); return 1; }
