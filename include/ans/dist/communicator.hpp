/// @file communicator.hpp
/// @brief A thin, checked wrapper over an MPI communicator (compiled only with ANS_WITH_MPI; the rest of the
/// library never includes <mpi.h>). MPI_Init / MPI_Finalize stay with the program; the wrapper works on a
/// duplicate of the MPI_Comm it is given (a handle, not an address) and counts the bytes this rank sends.
///
/// Every collective here is deterministic: reductions gather every rank's contribution and add them in rank
/// order on every rank (`allreduce_sum_ordered`), so the result does not depend on MPI's reduction tree and
/// is the same bits on every rank and in every run with the same number of ranks.
#pragma once

#ifndef ANS_WITH_MPI
#error "ans/dist needs MPI: configure with -DANS_WITH_MPI=ON and link ans::mpi"
#endif

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "ans/config.hpp"

namespace ans::dist {

namespace detail {
template <class T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
  else static_assert(sizeof(T) == 0, "ans::dist: unsupported element type");
}
inline void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  ANS_THROW("MPI " << what << " failed: " << std::string(msg, static_cast<size_t>(len)));
}
}  // namespace detail

class communicator {
 public:
  /// Works on a duplicate of `comm` (MPI_Comm_dup, collective: every rank of `comm` constructs one), so its
  /// messages never match the program's and the program's own communicator keeps its error handler. On the
  /// duplicate, errors are returned instead of aborting (MPI_ERRORS_RETURN): a failed collective throws
  /// ans::error with MPI's message; a rank that dies makes mpirun end the others. An ans::error thrown on one
  /// rank only (bad input, a non-finite loss) leaves the others waiting in their next collective: catch it
  /// and call MPI_Abort, as ans-train does. Destroy it before MPI_Finalize (afterwards it frees nothing).
  explicit communicator(MPI_Comm comm) {
    int init = 0;
    MPI_Initialized(&init);
    ANS_CHECK(init, "ans::dist::communicator: MPI is not initialised (call MPI_Init first)");
    detail::check(MPI_Comm_dup(comm, &comm_), "Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    detail::check(MPI_Comm_rank(comm_, &rank_), "Comm_rank");
    detail::check(MPI_Comm_size(comm_, &size_), "Comm_size");
  }
  communicator(const communicator&) = delete;
  communicator& operator=(const communicator&) = delete;
  ~communicator() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    for (auto& rt : row_types_) MPI_Type_free(&rt.type);
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm handle() const { return comm_; }
  /// Bytes this rank has passed to MPI as its contribution (send buffers of the collectives).
  std::uint64_t bytes_sent() const { return bytes_; }
  void reset_bytes() { bytes_ = 0; }

  void barrier() { detail::check(MPI_Barrier(comm_), "Barrier"); }

  /// all[r] = value of rank r.
  template <class T>
  void allgather(const T& value, std::vector<T>& all) {
    all.resize(static_cast<size_t>(size_));
    bytes_ += sizeof(T);
    detail::check(MPI_Allgather(&value, 1, detail::mpi_type<T>(), all.data(), 1, detail::mpi_type<T>(), comm_),
                  "Allgather");
  }
  /// Concatenation over ranks of `n` elements each (counts may differ): `all` holds them rank by rank,
  /// `offsets[r]` where rank r's start (size + 1 entries).
  template <class T>
  void allgatherv(const T* mine, index_t n, std::vector<T>& all, std::vector<index_t>& offsets) {
    counts_.resize(static_cast<size_t>(size_));
    displs_.resize(static_cast<size_t>(size_));
    ANS_CHECK(n <= INT32_MAX, "ans::dist::allgatherv: " << n << " elements exceed MPI's int count");
    const int mine_n = static_cast<int>(n);
    detail::check(MPI_Allgather(&mine_n, 1, MPI_INT, counts_.data(), 1, MPI_INT, comm_), "Allgather (counts)");
    offsets.assign(static_cast<size_t>(size_) + 1, 0);
    for (int r = 0; r < size_; ++r) offsets[r + 1] = offsets[r] + counts_[r];
    ANS_CHECK(offsets.back() <= INT32_MAX, "ans::dist::allgatherv: " << offsets.back() << " elements exceed MPI's int count");
    for (int r = 0; r < size_; ++r) displs_[r] = static_cast<int>(offsets[r]);
    all.resize(static_cast<size_t>(offsets.back()));
    bytes_ += sizeof(int) + static_cast<std::uint64_t>(n) * sizeof(T);
    detail::check(MPI_Allgatherv(mine, mine_n, detail::mpi_type<T>(), all.data(), counts_.data(), displs_.data(),
                                 detail::mpi_type<T>(), comm_),
                  "Allgatherv");
  }
  /// In-place all-gather of row blocks: in the rows x width array `buf`, rank r's block is rows
  /// [offsets[r], offsets[r+1]) (offsets: size + 1 non-decreasing entries, the same on every rank); each rank
  /// writes its block and on return holds every block (MPI_Allgatherv with MPI_IN_PLACE: no copy).
  template <class T>
  void allgather_blocks(T* buf, index_t width, const std::vector<index_t>& offsets) {
    ANS_CHECK(static_cast<int>(offsets.size()) == size_ + 1,
              "ans::dist::allgather_blocks: " << offsets.size() << " offsets for " << size_ << " ranks (needs size + 1)");
    ANS_CHECK(width >= 0 && offsets.front() == 0, "ans::dist::allgather_blocks: width " << width << ", first offset "
                                                                                        << offsets.front());
    counts_.resize(static_cast<size_t>(size_));
    displs_.resize(static_cast<size_t>(size_));
    // counted in rows (a contiguous type of `width` elements): a table of up to 2^31 - 1 rows of any width,
    // where element counts would stop at 2^31 - 1 elements (33.5 M rows at d = 64)
    for (int r = 0; r < size_; ++r) {
      ANS_CHECK(offsets[r] <= offsets[r + 1], "ans::dist::allgather_blocks: offsets decrease at rank " << r);
      ANS_CHECK(offsets[r + 1] <= INT32_MAX,
                "ans::dist::allgather_blocks: " << offsets[r + 1] << " rows exceed MPI's int count");
      counts_[r] = static_cast<int>(offsets[r + 1] - offsets[r]);
      displs_[r] = static_cast<int>(offsets[r]);
    }
    if (width == 0) return;
    bytes_ += static_cast<std::uint64_t>(counts_[rank_]) * static_cast<std::uint64_t>(width) * sizeof(T);
    detail::check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts_.data(), displs_.data(),
                                 row_type<T>(width), comm_),
                  "Allgatherv (row blocks)");
  }
  /// recv_count[r] = what rank r passes for this rank in its send_count (MPI_Alltoall of one count per rank).
  void alltoall_counts(const std::vector<index_t>& send_count, std::vector<index_t>& recv_count) {
    ANS_CHECK(static_cast<int>(send_count.size()) == size_,
              "ans::dist::alltoall_counts: " << send_count.size() << " counts for " << size_ << " ranks");
    counts_.resize(static_cast<size_t>(size_));
    displs_.resize(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      ANS_CHECK(send_count[r] >= 0 && send_count[r] <= INT32_MAX, "ans::dist::alltoall_counts: count " << send_count[r]);
      counts_[r] = static_cast<int>(send_count[r]);
    }
    bytes_ += sizeof(int) * static_cast<std::uint64_t>(size_);
    detail::check(MPI_Alltoall(counts_.data(), 1, MPI_INT, displs_.data(), 1, MPI_INT, comm_), "Alltoall (counts)");
    recv_count.assign(displs_.begin(), displs_.end());
  }
  /// Rank by rank: send_count[r] elements of `send` go to rank r, and recv_count[r] elements from rank r land in
  /// `recv` (rank by rank; the counts must match the senders', e.g. from alltoall_counts). MPI_Alltoallv.
  template <class T>
  void alltoallv(const T* send, const std::vector<index_t>& send_count, T* recv, const std::vector<index_t>& recv_count) {
    ANS_CHECK(static_cast<int>(send_count.size()) == size_ && static_cast<int>(recv_count.size()) == size_,
              "ans::dist::alltoallv: " << send_count.size() << " and " << recv_count.size() << " counts for " << size_ << " ranks");
    std::vector<int>& sc = a2a_[0];
    std::vector<int>& sd = a2a_[1];
    std::vector<int>& rc = a2a_[2];
    std::vector<int>& rd = a2a_[3];
    for (auto* v : {&sc, &sd, &rc, &rd}) v->resize(static_cast<size_t>(size_));
    index_t so = 0, ro = 0;
    for (int r = 0; r < size_; ++r) {
      ANS_CHECK(so + send_count[r] <= INT32_MAX && ro + recv_count[r] <= INT32_MAX,
                "ans::dist::alltoallv: more elements than MPI's int count");
      sc[r] = static_cast<int>(send_count[r]), sd[r] = static_cast<int>(so), so += send_count[r];
      rc[r] = static_cast<int>(recv_count[r]), rd[r] = static_cast<int>(ro), ro += recv_count[r];
    }
    bytes_ += static_cast<std::uint64_t>(so - send_count[rank_]) * sizeof(T);  // what leaves this rank
    detail::check(MPI_Alltoallv(send, sc.data(), sd.data(), detail::mpi_type<T>(), recv, rc.data(), rd.data(),
                                detail::mpi_type<T>(), comm_),
                  "Alltoallv");
  }
  /// Sends n_send elements to rank `peer` and receives n_recv from it (MPI_Sendrecv).
  template <class T>
  void sendrecv(int peer, const T* send, index_t n_send, T* recv, index_t n_recv) {
    ANS_CHECK(peer >= 0 && peer < size_ && peer != rank_, "ans::dist::sendrecv: peer " << peer << " of " << size_);
    ANS_CHECK(n_send <= INT32_MAX && n_recv <= INT32_MAX,
              "ans::dist::sendrecv: " << std::max(n_send, n_recv) << " elements exceed MPI's int count");
    bytes_ += static_cast<std::uint64_t>(n_send) * sizeof(T);
    detail::check(MPI_Sendrecv(send, static_cast<int>(n_send), detail::mpi_type<T>(), peer, 17, recv,
                               static_cast<int>(n_recv), detail::mpi_type<T>(), peer, 17, comm_, MPI_STATUS_IGNORE),
                  "Sendrecv");
  }
  /// x[0..n) ← Σ_r x_r[0..n), added in rank order on every rank (deterministic; see the file comment).
  template <class T>
  void allreduce_sum_ordered(T* x, index_t n) {
    std::vector<T>& all = scratch<T>();
    all.resize(static_cast<size_t>(n) * static_cast<size_t>(size_));
    bytes_ += static_cast<std::uint64_t>(n) * sizeof(T);
    ANS_CHECK(n <= INT32_MAX, "ans::dist::allreduce_sum_ordered: " << n << " elements exceed MPI's int count");
    detail::check(MPI_Allgather(x, static_cast<int>(n), detail::mpi_type<T>(), all.data(), static_cast<int>(n),
                                detail::mpi_type<T>(), comm_),
                  "Allgather (ordered sum)");
    for (index_t j = 0; j < n; ++j) {
      T s = all[j];
      for (int r = 1; r < size_; ++r) s += all[static_cast<size_t>(r) * n + j];
      x[j] = s;
    }
  }

 private:
  // A committed contiguous type of `width` elements of T (one row), made once per (T, width) and freed with
  // the communicator.
  template <class T>
  MPI_Datatype row_type(index_t width) {
    ANS_CHECK(width >= 1 && width <= INT32_MAX, "ans::dist::communicator: a row of " << width << " elements");
    const MPI_Datatype base = detail::mpi_type<T>();
    for (const auto& rt : row_types_)
      if (rt.base == base && rt.width == width) return rt.type;
    MPI_Datatype t;
    detail::check(MPI_Type_contiguous(static_cast<int>(width), base, &t), "Type_contiguous");
    detail::check(MPI_Type_commit(&t), "Type_commit");
    row_types_.push_back({base, width, t});
    return t;
  }
  struct row_type_entry {
    MPI_Datatype base;
    index_t width;
    MPI_Datatype type;
  };
  std::vector<row_type_entry> row_types_;
  template <class T>
  std::vector<T>& scratch() {
    if constexpr (std::is_same_v<T, float>) return sf_;
    else if constexpr (std::is_same_v<T, double>) return sd_;
    else return si_;
  }
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::uint64_t bytes_ = 0;
  std::vector<int> counts_, displs_;
  std::vector<int> a2a_[4];
  std::vector<float> sf_;
  std::vector<double> sd_;
  std::vector<std::int64_t> si_;
};

}  // namespace ans::dist
