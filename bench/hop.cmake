# bench/hop (issue 8): agents hopping between two daemons on loopback.
agentd_bench(hop SOURCES ${CMAKE_CURRENT_LIST_DIR}/hop.c LIBS mig PkgConfig::ZMQ)
add_dependencies(bench_hop agentd)
