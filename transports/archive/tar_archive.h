// TarArchive: a tar file indexed once — every member's header and data offset — and then read
// by member, never extracted. A plain tar is read with pread (any number of readers at once);
// a gzip- or zstd-compressed one is indexed in one decompressing pass, and each member read
// later is reached by another pass from the start (small JSON members are kept from the
// first pass). Thread-safe once opened.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transports/archive/decompress.h"
#include "transports/archive/tar_reader.h"
#include "transports/util/file_util.h"

namespace regfs {

class TarArchive {
 public:
  struct Member {
    TarEntry entry;
    std::string head;  // the first bytes of its data (up to 8), to recognise compression
  };

  // `description` names the archive in messages.
  static Result<std::shared_ptr<const TarArchive>> Open(UniqueFd fd, std::string description,
                                                        TarLimits limits = {});

  const std::string& description() const { return description_; }
  // The archive file itself is compressed.
  Compression compression() const { return compression_; }

  // The first member whose cleaned name is CleanTarPath(name); nullptr if none.
  const Member* Find(std::string_view name) const;

  // The regular file `name` names: a symlink is followed once, inside the archive, relative
  // to its directory (as containers/image follows the legacy layer links). ENOENT naming the
  // archive when there is none.
  Result<const Member*> FindFile(std::string_view name) const;

  // A member's data as a stream.
  Result<std::unique_ptr<TarInput>> OpenData(const Member& m) const;

  // A whole member, EFBIG when larger than `max`.
  Result<std::string> ReadFile(std::string_view name, int64_t max) const;

 private:
  TarArchive(UniqueFd fd, std::string description)
      : fd_(std::move(fd)), description_(std::move(description)) {}
  Status Index(TarLimits limits);

  UniqueFd fd_;
  int64_t file_size_ = 0;
  const std::string description_;
  Compression compression_ = Compression::kNone;
  std::vector<Member> members_;
  std::map<std::string, size_t, std::less<>> by_name_;  // cleaned name → first member
  std::map<size_t, std::string> kept_;                  // member → data, compressed archives
};

}  // namespace regfs
