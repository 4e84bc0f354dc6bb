# Code segments, manifests and key files (migrate/mig_segment, mig_manifest, mig_key).
agentd_test(test_mig_manifest SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_manifest.c LIBS mig TIMEOUT 60)
agentd_test(test_mig_segment SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_segment.c LIBS mig TIMEOUT 120)
agentd_test(test_mig_key SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_key.c LIBS mig TIMEOUT 60)
