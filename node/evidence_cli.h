/* node/evidence_cli: `tbnode evidence export` (asks a running node over its control socket for
 * the bundle, node/tk_evidence.c) and `tbnode evidence verify` (checks a bundle with no node:
 * measure/bundle.h). */
#ifndef TB_NODE_EVIDENCE_CLI_H
#define TB_NODE_EVIDENCE_CLI_H

/* argv[0] is "evidence"; returns the process exit code (0; 1 a check failed or the node could
 * not answer; 2 usage). */
int tb_evidence_main(int argc, char **argv);

#endif
