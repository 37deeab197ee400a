#!/bin/sh
# Stands in for ssh when hydra (MPICH's mpiexec) starts its proxies on "hosts" that are
# network namespaces of this machine: `mpiexec -launcher ssh -launcher-exec THIS_SCRIPT`.
# Hydra calls it as ssh: `THIS_SCRIPT [ssh options] HOST COMMAND...`. The options are
# dropped, HOST is mapped to its namespace through MPROC_NETNS_MAP ("ip=ns,ip=ns"), and
# COMMAND runs there, as a cluster's own launcher would run it on the host.
while [ $# -gt 0 ]; do
    case "$1" in
        -*) shift ;;
        *) break ;;
    esac
done
host="$1"
shift
ns=""
for pair in $(echo "${MPROC_NETNS_MAP:-}" | tr ',' ' '); do
    if [ "${pair%%=*}" = "$host" ]; then
        ns="${pair#*=}"
    fi
done
if [ -z "$ns" ]; then
    echo "netns-launcher: no namespace for host $host in MPROC_NETNS_MAP=${MPROC_NETNS_MAP:-}" >&2
    exit 255
fi
exec ip netns exec "$ns" sh -c "$*"
