/* `craylet topo`: the node's GPU graph and its live gangs, for people.
 *
 *   craylet topo [--topology FILE]   the GPU matrix and its NVLink islands
 *                                    (FILE, else CRAYLET_GPU_TOPOLOGY, else
 *                                    NVML)
 *   craylet topo --session DIR       each live gang's choice, from the record
 *                                    the daemon keeps in DIR/logs
 * Exit codes: 0, 1 when there is nothing to show, 2 for bad arguments or a
 * malformed file. */
#ifndef CRAYLET_RAYLET_TOPO_CLI_H
#define CRAYLET_RAYLET_TOPO_CLI_H

/* argv[0] is "topo". */
int topo_cli_main(int argc, char **argv);

#endif
