#ifndef LORS_CMPI_SHIM_H
#define LORS_CMPI_SHIM_H
/*
 * OpenMPI's predefined handles are macros that cast the address of a global
 * (e.g. `#define MPI_COMM_WORLD OMPI_PREDEFINED_GLOBAL(MPI_Comm, ompi_mpi_comm_world)`),
 * which Swift cannot import. Each getter below returns one of them.
 * Nothing else belongs in this file.
 */
#include <mpi.h>

/* Communicators */
static inline MPI_Comm lors_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm lors_mpi_comm_self(void) { return MPI_COMM_SELF; }
static inline MPI_Comm lors_mpi_comm_null(void) { return MPI_COMM_NULL; }

/* Datatypes */
static inline MPI_Datatype lors_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype lors_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype lors_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype lors_mpi_long_long(void) { return MPI_LONG_LONG; }
static inline MPI_Datatype lors_mpi_int64_t(void) { return MPI_INT64_T; }
static inline MPI_Datatype lors_mpi_unsigned_char(void) { return MPI_UNSIGNED_CHAR; }
static inline MPI_Datatype lors_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype lors_mpi_char(void) { return MPI_CHAR; }

/* Reduction operations */
static inline MPI_Op lors_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op lors_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op lors_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op lors_mpi_prod(void) { return MPI_PROD; }

/* Miscellaneous handles and sentinels */
static inline MPI_Info lors_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Status *lors_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline void *lors_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request lors_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Errhandler lors_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Errhandler lors_mpi_errors_are_fatal(void) { return MPI_ERRORS_ARE_FATAL; }

/* Sizes defined through other macros */
static inline int lors_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int lors_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

#endif
