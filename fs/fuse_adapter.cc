#define FUSE_USE_VERSION 312
#include "fs/fuse_adapter.h"

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace regfs {
namespace {

struct Context {
  Filesystem* fs;
  uid_t uid;  // the owner every file is shown with
  gid_t gid;
  mode_t umask;  // taken from every mode shown
  timespec start;

  uint32_t Mode(uint32_t mode) const { return mode & ~static_cast<uint32_t>(umask); }
};

Context* Ctx(fuse_req_t req) { return static_cast<Context*>(fuse_req_userdata(req)); }

// Tells the kernel to drop entries (Filesystem::SetEntryInvalidator) on a thread of its own:
// the kernel takes the directory's lock for it, which a request in that directory may hold,
// so no request thread makes the call or waits for it.
class EntryInvalidator {
 public:
  explicit EntryInvalidator(fuse_session* se) : se_(se), thread_([this] { Run(); }) {}
  ~EntryInvalidator() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Add(uint64_t parent, const std::string& name) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.size() >= kMaxQueued) return;  // only memory is lost: the kernel forgets later
      queue_.emplace_back(parent, name);
    }
    cv_.notify_one();
  }

 private:
  static constexpr size_t kMaxQueued = 100000;
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      auto [parent, name] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      // ENOENT: the kernel has no such entry (any more); nothing else to do either way.
      (void)fuse_lowlevel_notify_inval_entry(se_, parent, name.data(), name.size());
      lock.lock();
    }
  }
  fuse_session* const se_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, std::string>> queue_;  // guarded by mu_
  bool stop_ = false;                                   // guarded by mu_
  std::thread thread_;
};

// Calls Filesystem::Housekeep() every kHousekeepingSeconds on a thread of its own, from the
// mount's start to its end.
class Housekeeper {
 public:
  explicit Housekeeper(Filesystem* fs) : fs_(fs), thread_([this] { Run(); }) {}
  ~Housekeeper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(Filesystem::kHousekeepingSeconds),
                         [this] { return stop_; })) {
      lock.unlock();
      fs_->Housekeep();
      lock.lock();
    }
  }
  Filesystem* const fs_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

// The errno a caller sees: DESIGN §1's vocabulary; network trouble of any kind is EIO.
int Errno(const Error& e) {
  switch (e.errnum) {
    case ENOENT:
    case EACCES:
    case EIO:
    case EAGAIN:
    case EOPNOTSUPP:
    case EINVAL:
    case EFBIG:
    case ENOTDIR:
    case EISDIR:
    case EROFS:
    case EBUSY:
    case ENODATA:
    case ERANGE:
    case EPERM:
    case EEXIST:
    case ENOTEMPTY:
    case EBADF:
    case ELOOP:
    case ENAMETOOLONG:
    case EXDEV:
      return e.errnum;
    default:
      return EIO;
  }
}

struct stat ToStat(const Context* c, const NodeAttr& a) {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = c->Mode(a.mode);
  st.st_nlink = a.nlink;
  st.st_size = a.size;
  st.st_blksize = 4096;
  st.st_blocks = (a.size + 511) / 512;
  st.st_uid = c->uid;
  st.st_gid = c->gid;
  st.st_atim = st.st_mtim = st.st_ctim = c->start;
  return st;
}

// Where a failed operation was, for the log: the inode's path in the tree ("/" the root),
// and the name under it when the operation names one.
std::string At(fuse_req_t req, fuse_ino_t ino, const char* name = nullptr) {
  std::string path = Ctx(req)->fs->PathOf(ino);
  if (name) path = path.empty() ? name : path + "/" + name;
  return path.empty() ? "/" : path;
}

// The answers that are not failures but routine, and so not logged: ENOENT of lookup (shells,
// ls and cp ask for names that are not there all the time; the reply is a negative entry),
// ENODATA of getxattr (ls and cp -a ask for attributes the tree does not have), EEXIST of
// mkdir (mkdir -p), EXDEV of rename and EOPNOTSUPP of copy_file_range (the cues for mv and cp
// to copy the bytes themselves).
bool Routine(const std::string& op, int errnum) {
  return (op == "lookup" && errnum == ENOENT) || (op == "getxattr" && errnum == ENODATA) ||
         (op == "mkdir" && errnum == EEXIST) || (op == "rename" && errnum == EXDEV) ||
         (op == "copy_file_range" && errnum == EOPNOTSUPP);
}

// Every failed operation is logged here, once, and nowhere in the core (DESIGN §1 "Errors"):
// "<op> <path>: <message>", the message carrying the registry's own words.
void LogFailure(fuse_req_t req, const std::string& op, const std::string& where, const Error& e) {
  if (!Routine(op, e.errnum)) Ctx(req)->fs->Log(op + " " + where + ": " + e.message);
}

void ReplyError(fuse_req_t req, const std::string& op, const std::string& where, const Error& e) {
  LogFailure(req, op, where, e);
  fuse_reply_err(req, Errno(e));
}

// Hands the kernel an entry whose lookup the core counted; a reply that does not reach it
// (the request was interrupted) gives the count back.
void ReplyEntry(fuse_req_t req, const NodeAttr& a) {
  fuse_entry_param e{};
  e.ino = a.ino;
  e.attr = ToStat(Ctx(req), a);
  e.attr_timeout = a.timeout;
  e.entry_timeout = a.entry_timeout;
  Filesystem* fs = Ctx(req)->fs;                                   // req is gone once replied to
  if (fuse_reply_entry(req, &e) != 0) (void)fs->Forget(a.ino, 1);  // just counted: cannot fail
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  Status s = Ctx(req)->fs->Forget(ino, n);
  if (!s.ok()) LogFailure(req, "forget", "inode " + std::to_string(ino), s.error());
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = Ctx(req)->fs->Lookup(parent, name);
  if (!r.ok()) {
    if (r.error().errnum == ENOENT) {  // routine, not logged (see Routine)
      fuse_entry_param e{};            // a negative entry, not cached: tags come and go
      fuse_reply_entry(req, &e);
      return;
    }
    ReplyError(req, "lookup", At(req, parent, name), r.error());
    return;
  }
  ReplyEntry(req, *r);
}

void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  Forget(req, ino, n);
  fuse_reply_none(req);
}

void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Forget(req, forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto r = Ctx(req)->fs->GetAttr(ino);
  if (!r.ok()) {
    ReplyError(req, "getattr", At(req, ino), r.error());
    return;
  }
  struct stat st = ToStat(Ctx(req), *r);
  fuse_reply_attr(req, &st, r->timeout);
}

void OnReadlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = Ctx(req)->fs->ReadLink(ino);
  if (!r.ok()) {
    ReplyError(req, "readlink", At(req, ino), r.error());
    return;
  }
  fuse_reply_readlink(req, r->c_str());
}

// A listing is taken once at opendir, so that readdir's offsets stay consistent.
void OnOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = Ctx(req)->fs->ReadDir(ino);
  if (!r.ok()) {
    ReplyError(req, "readdir", At(req, ino), r.error());
    return;
  }
  auto* entries = new std::vector<DirEntry>();
  entries->push_back({".", ino, S_IFDIR});
  entries->push_back({"..", 0, S_IFDIR});
  for (auto& e : *r) entries->push_back(std::move(e));
  fi->fh = reinterpret_cast<uint64_t>(entries);
  if (fuse_reply_open(req, fi) != 0) delete entries;  // no releasedir comes for it
}

void OnReaddir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  auto* entries = reinterpret_cast<std::vector<DirEntry>*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < entries->size(); ++i) {
    const DirEntry& e = (*entries)[i];
    struct stat st {};
    st.st_ino = e.ino ? e.ino : 0xffffffffULL;
    st.st_mode = Ctx(req)->Mode(e.mode);
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st,
                                    static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OnStatfs(fuse_req_t req, fuse_ino_t) {
  Filesystem::SpaceUsage space = Ctx(req)->fs->Space();
  constexpr int64_t kBlock = 4096;
  struct statvfs st {};
  st.f_bsize = st.f_frsize = kBlock;
  st.f_blocks = static_cast<fsblkcnt_t>(space.total / kBlock);
  st.f_bfree = st.f_bavail = static_cast<fsblkcnt_t>((space.total - space.used) / kBlock);
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

void OnReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<std::vector<DirEntry>*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = Ctx(req)->fs->Open(ino, fi->flags, fuse_req_ctx(req)->pid);
  if (!r.ok()) {
    ReplyError(req, "open", At(req, ino), r.error());
    return;
  }
  fi->fh = r->handle;
  fi->keep_cache = r->keep_cache;
  fi->direct_io = r->direct_io;
  Filesystem* fs = Ctx(req)->fs;
  if (fuse_reply_open(req, fi) != 0) fs->Release(r->handle);  // no release comes for it
}

void OnRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  std::vector<char> buf(size);
  auto r = Ctx(req)->fs->Read(fi->fh, buf.data(), size, off);
  if (!r.ok()) {
    ReplyError(req, "read", At(req, ino), r.error());
    return;
  }
  fuse_reply_buf(req, buf.data(), *r);
}

void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Ctx(req)->fs->Release(fi->fh);
  fuse_reply_err(req, 0);
}

void OnGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  auto r = Ctx(req)->fs->GetXattr(ino, name);
  if (!r.ok()) {
    ReplyError(req, "getxattr", At(req, ino) + " " + name, r.error());
    return;
  }
  if (size == 0) {
    fuse_reply_xattr(req, r->size());
  } else if (size < r->size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, r->data(), r->size());
  }
}

void OnListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto r = Ctx(req)->fs->ListXattr(ino);
  if (!r.ok()) {
    ReplyError(req, "listxattr", At(req, ino), r.error());
    return;
  }
  std::string names;
  for (const auto& n : *r) names += n + '\0';
  if (size == 0) {
    fuse_reply_xattr(req, names.size());
  } else if (size < names.size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, names.data(), names.size());
  }
}

void OnSetxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
  fuse_reply_err(req, ENOTSUP);
}

void OnRemovexattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, ENOTSUP); }

void ReplyStatus(fuse_req_t req, const std::string& op, const std::string& where, const Status& s) {
  if (!s.ok()) LogFailure(req, op, where, s.error());
  fuse_reply_err(req, s.ok() ? 0 : Errno(s.error()));
}

void OnMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
  auto r = Ctx(req)->fs->Mkdir(parent, name);
  if (!r.ok()) {
    ReplyError(req, "mkdir", At(req, parent, name), r.error());
    return;
  }
  ReplyEntry(req, *r);
}

void OnCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t, fuse_file_info* fi) {
  auto r = Ctx(req)->fs->Create(parent, name, fuse_req_ctx(req)->pid);
  if (!r.ok()) {
    ReplyError(req, "create", At(req, parent, name), r.error());
    return;
  }
  fuse_entry_param e{};
  e.ino = r->first.ino;
  e.attr = ToStat(Ctx(req), r->first);
  fi->fh = r->second.handle;
  fi->direct_io = r->second.direct_io;
  Filesystem* fs = Ctx(req)->fs;
  if (fuse_reply_create(req, &e, fi) != 0) {
    // The kernel got neither the entry nor the handle: give both back.
    fs->Release(r->second.handle);
    (void)fs->Forget(r->first.ino, 1);
  }
}

void OnWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  auto r = Ctx(req)->fs->Write(fi->fh, buf, size, off);
  if (!r.ok()) {
    ReplyError(req, "write", At(req, ino), r.error());
    return;
  }
  fuse_reply_write(req, *r);
}

// close(): the kernel ignores release's result, so a staged file is checked, and a completed
// image pushed, here.
void OnFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Status s = Ctx(req)->fs->Flush(fi->fh);
  ReplyStatus(req, "close", s.ok() ? "" : At(req, ino), s);
}

void OnFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

void OnSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  int64_t size = attr->st_size;
  auto r = Ctx(req)->fs->SetAttr(ino, (to_set & FUSE_SET_ATTR_SIZE) ? &size : nullptr);
  if (!r.ok()) {
    ReplyError(req, "setattr", At(req, ino), r.error());
    return;
  }
  struct stat st = ToStat(Ctx(req), *r);
  fuse_reply_attr(req, &st, r->timeout);
}

void OnUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Status s = Ctx(req)->fs->Unlink(parent, name);
  ReplyStatus(req, "unlink", s.ok() ? "" : At(req, parent, name), s);
}

void OnRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Status s = Ctx(req)->fs->Rmdir(parent, name);
  ReplyStatus(req, "rmdir", s.ok() ? "" : At(req, parent, name), s);
}

void OnRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned int flags) {
  if (flags != 0) {
    fuse_reply_err(req, EINVAL);  // RENAME_EXCHANGE and RENAME_NOREPLACE are not supported
    return;
  }
  Status s = Ctx(req)->fs->Rename(parent, name, new_parent, new_name);
  ReplyStatus(req, "rename",
              s.ok() ? "" : At(req, parent, name) + " to " + At(req, new_parent, new_name), s);
}

void OnCopyFileRange(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info* fi_in,
                     fuse_ino_t ino_out, off_t off_out, fuse_file_info* fi_out, size_t len, int) {
  auto r = Ctx(req)->fs->CopyFileRange(fi_in->fh, off_in, fi_out->fh, off_out, len);
  if (!r.ok()) {
    ReplyError(req, "copy_file_range", At(req, ino_in) + " to " + At(req, ino_out), r.error());
    return;
  }
  fuse_reply_write(req, *r);
}

void OnInit(void*, fuse_conn_info* conn) {
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  conn->max_readahead = 8 << 20;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
}

}  // namespace

Status ServeFuse(Filesystem& fs, const std::string& mountpoint, const MountOptions& options,
                 const std::function<void()>& ready) {
  fuse_lowlevel_ops ops{};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.forget = OnForget;
  ops.forget_multi = OnForgetMulti;
  ops.getattr = OnGetattr;
  ops.readlink = OnReadlink;
  ops.opendir = OnOpendir;
  ops.readdir = OnReaddir;
  ops.releasedir = OnReleasedir;
  ops.open = OnOpen;
  ops.read = OnRead;
  ops.release = OnRelease;
  ops.getxattr = OnGetxattr;
  ops.listxattr = OnListxattr;
  ops.setxattr = OnSetxattr;
  ops.removexattr = OnRemovexattr;
  ops.mkdir = OnMkdir;
  ops.create = OnCreate;
  ops.write = OnWrite;
  ops.flush = OnFlush;
  ops.fsync = OnFsync;
  ops.setattr = OnSetattr;
  ops.unlink = OnUnlink;
  ops.rmdir = OnRmdir;
  ops.rename = OnRename;
  ops.copy_file_range = OnCopyFileRange;
  ops.statfs = OnStatfs;

  Context ctx{&fs,
              options.uid >= 0 ? static_cast<uid_t>(options.uid) : getuid(),
              options.gid >= 0 ? static_cast<gid_t>(options.gid) : getgid(),
              static_cast<mode_t>(EffectiveUmask(options)),
              {}};
  clock_gettime(CLOCK_REALTIME, &ctx.start);
  std::string opts = "fsname=regfs,subtype=regfs,default_permissions";
  if (options.allow_other) opts += ",allow_other";
  if (options.read_only) opts += ",ro";
  std::vector<std::string> argv_s = {"regfs", "-o", opts};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &ctx);
  // fuse_session_new copies the arguments it rewrites into memory of its own: ours to free.
  fuse_opt_free_args(&args);
  if (!se) return MakeError(EIO, "cannot create the FUSE session");
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return MakeError(EIO, "cannot install signal handlers");
  }
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return MakeError(EIO,
                     "cannot mount at " + mountpoint + " (is /dev/fuse there, and fusermount3?)");
  }
  ready();
  int rc = 0;
  {
    EntryInvalidator invalidator(se);
    fs.SetEntryInvalidator([&invalidator](uint64_t parent, const std::string& name) {
      invalidator.Add(parent, name);
    });
    {
      Housekeeper housekeeper(&fs);  // ends before the invalidator it may call goes
      fuse_loop_config* config = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(config, 64);
      rc = fuse_session_loop_mt(se, config);
      fuse_loop_cfg_destroy(config);
    }
    fs.SetEntryInvalidator(nullptr);
  }
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  if (rc < 0) return MakeError(-rc, "FUSE loop failed");
  return Ok();
}

}  // namespace regfs
