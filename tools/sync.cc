// regfs sync --src docker|dir|yaml --dest docker|dir SOURCE DESTINATION: skopeo sync's forms,
// flags, YAML and destination layout, with images in parallel, unchanged images skipped after
// HEAD requests, filters, prune, reports and shards (transports/sync/sync.h).
#include "transports/sync/sync.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/signing.h"
#include "transports/blobinfocache/blob_location_cache.h"
#include "transports/sync/sync_config.h"
#include "transports/util/digest.h"
#include "transports/util/file_util.h"

namespace regfs::cli {
namespace {

// Filters given on the command line, for every source (YAML ones add their own).
struct CliFilters {
  std::vector<std::string> include, exclude;
  std::vector<Platform> platforms;
};

Result<std::function<bool(const std::string&)>> Selector(SyncRepository repo,
                                                         const CliFilters& cli) {
  repo.include.insert(repo.include.end(), cli.include.begin(), cli.include.end());
  repo.exclude.insert(repo.exclude.end(), cli.exclude.begin(), cli.exclude.end());
  if (repo.kind == SyncRepository::Kind::kAllTags && repo.include.empty() && repo.exclude.empty())
    return std::function<bool(const std::string&)>();
  ASSIGN_OR_RETURN(TagSelector selector, TagSelector::For(repo));
  return std::function<bool(const std::string&)>(
      [selector = std::move(selector)](const std::string& tag) { return selector.Selects(tag); });
}

// --src docker: a repository (every tag) or one image.
Result<std::vector<SyncSource>> DockerSources(const std::string& source,
                                              const RegistryOptions& options,
                                              const CliFilters& cli) {
  ASSIGN_OR_RETURN(DockerReference ref, ParseDockerReference(source));
  SyncSource s;
  s.ref.transport = Transport::kDocker;
  s.ref.docker = ref;
  s.options = options;
  s.platforms = cli.platforms;
  if (ref.tag_defaulted && ref.digest.empty()) {
    ASSIGN_OR_RETURN(s.selects, Selector(SyncRepository{}, cli));
  } else {
    s.refs = {ref.digest.empty() ? ref.tag : ref.digest};
  }
  return std::vector<SyncSource>{std::move(s)};
}

// --src dir: every image directory below SOURCE (one with a manifest.json; not looked into).
Status WalkImages(const std::string& dir, std::vector<std::string>* out, int depth) {
  if (PathExists(dir + "/manifest.json")) {
    out->push_back(dir);
    return Ok();
  }
  if (depth > 64) return MakeError(ELOOP, dir + ": too deep");
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = dir == "/" ? "/" + name : dir + "/" + name;
    if (IsDirectory(path)) RETURN_IF_ERROR(WalkImages(path, out, depth + 1));
  }
  return Ok();
}

Result<std::vector<SyncSource>> DirSources(std::string source, const CliFilters& cli) {
  if (!IsDirectory(source)) {
    return MakeError(ENOENT, "invalid source directory " + source + ": not a directory");
  }
  std::string root = source;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::vector<std::string> images;
  RETURN_IF_ERROR(WalkImages(root, &images, 0));
  if (images.empty()) return MakeError(ENOENT, "no images to sync found in " + source);
  std::vector<SyncSource> out;
  for (const std::string& image : images) {
    SyncSource s;
    s.ref.transport = Transport::kDir;
    s.ref.path = image;
    s.platforms = cli.platforms;
    // As skopeo: the image's path with SOURCE (as given) cut off the front; SOURCE's own name
    // when it is the image.
    s.dir_suffix = image.rfind(source, 0) == 0 ? image.substr(source.size()) : image;
    if (s.dir_suffix.empty() || image == root) {
      s.dir_suffix = root.substr(root.rfind('/') == std::string::npos ? 0 : root.rfind('/') + 1);
    }
    out.push_back(std::move(s));
  }
  return out;
}

// --src yaml: skopeo's sync file (transports/sync/sync_config.h).
Result<std::vector<SyncSource>> YamlSources(const std::string& path, const RegistryOptions& base,
                                            const CliFilters& cli) {
  ASSIGN_OR_RETURN(SyncConfig config, LoadSyncYaml(path));
  for (const std::string& w : config.warnings) {
    std::fprintf(stderr, "regfs sync: warning: %s\n", w.c_str());
  }
  std::vector<SyncSource> out;
  for (const SyncRegistry& reg : config.registries) {
    RegistryOptions options = base;
    options.cert_dir = reg.cert_dir;  // as skopeo: the file's setting, even when empty
    if (reg.tls_verify) {
      options.tls_verify = *reg.tls_verify;
      options.tls_verify_set = true;
    }
    if (reg.credentials) {
      options.creds = Credentials{reg.credentials->username, reg.credentials->password, ""};
      options.no_creds = false;
    }
    if (reg.repositories.empty()) {
      std::fprintf(stderr, "regfs sync: warning: no images specified for registry %s\n",
                   reg.name.c_str());
    }
    for (const SyncRepository& repo : reg.repositories) {
      ASSIGN_OR_RETURN(DockerReference ref, ParseDockerReference(reg.name + "/" + repo.name));
      if (!ref.tag_defaulted || !ref.digest.empty() || ref.registry != reg.name) {
        return MakeError(
            EINVAL, path + ": " + reg.name + ": \"" + repo.name + "\" is not a repository name");
      }
      SyncSource s;
      s.ref.transport = Transport::kDocker;
      s.ref.docker = ref;
      s.options = options;
      s.target = repo.target;
      for (const std::string& p : repo.platforms) {
        ASSIGN_OR_RETURN(Platform platform, ParsePlatform(p));
        s.platforms.push_back(platform);
      }
      if (s.platforms.empty()) s.platforms = cli.platforms;
      if (repo.kind == SyncRepository::Kind::kRefs) {
        // Named tags pass include and exclude too; digests are no tags and always go.
        ASSIGN_OR_RETURN(auto selects, Selector(repo, cli));
        for (const std::string& named : repo.refs) {
          if (!selects || IsSha256Digest(named) || selects(named)) s.refs.push_back(named);
        }
      } else {
        ASSIGN_OR_RETURN(s.selects, Selector(repo, cli));
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

Status WriteLines(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) return SysError("creating", path);
  f << text;
  f.close();
  if (!f) return SysError("writing", path);
  return Ok();
}

std::string ReportLine(const SyncOutcome& o) {
  nlohmann::ordered_json j;
  j["source"] = o.source;
  j["destination"] = o.destination;
  j["digest"] = o.digest;
  j["action"] = o.action;
  j["bytes"] = o.bytes;
  j["seconds"] = std::round(o.seconds * 1000) / 1000;
  j["error"] = o.error;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

int Run(const Command& self, const Args& args) {
  auto format = ManifestFormatFrom(args);
  if (!format.ok()) return UsageError(self, format.error().message);
  const std::string src_kind = args.String("src"), dest_kind = args.String("dest");
  if (src_kind.empty()) return UsageError(self, "a source transport must be specified (--src)");
  if (src_kind != "docker" && src_kind != "dir" && src_kind != "yaml") {
    return UsageError(self,
                      "\"" + src_kind + "\" is not a valid source transport (docker, dir, yaml)");
  }
  if (dest_kind.empty())
    return UsageError(self, "a destination transport must be specified (--dest)");
  if (dest_kind != "docker" && dest_kind != "dir") {
    return UsageError(self,
                      "\"" + dest_kind + "\" is not a valid destination transport (docker, dir)");
  }
  if (src_kind == "dir" && dest_kind == "dir") {
    return UsageError(self,
                      "sync from 'dir' to 'dir' not implemented, consider using rsync instead");
  }
  auto src_opts = RegistryOptionsFrom(args, "src-");
  if (!src_opts.ok()) return UsageError(self, src_opts.error().message);
  auto dst_opts = RegistryOptionsFrom(args, "dest-");
  if (!dst_opts.ok()) return UsageError(self, dst_opts.error().message);
  const int max_requests = args.Int("max-requests-per-registry");
  src_opts->max_requests = dst_opts->max_requests = max_requests;
  auto registries_d = RegistriesDFrom(args);
  if (!registries_d.ok()) return Fail(self, registries_d.error());
  src_opts->registries_d = dst_opts->registries_d = *registries_d;
  auto signers = SignersFrom(args);
  if (!signers.ok()) return Fail(self, signers.error());

  SyncOptions options;
  options.dest_transport = dest_kind == "docker" ? Transport::kDocker : Transport::kDir;
  options.destination = args.positional()[1];
  options.all = args.Bool("all");
  options.scoped = args.Bool("scoped");
  options.append_suffix = args.String("append-suffix");
  options.dry_run = args.Bool("dry-run");
  options.keep_going = args.Bool("keep-going");
  options.prune = args.Bool("prune");
  options.jobs = std::max(1, args.Int("jobs"));
  options.remove_signatures = args.Bool("remove-signatures");
  options.format = *format;
  for (const auto& signer : *signers) options.signers.push_back(signer.get());
  if (args.Given("sign-identity")) {
    auto identity = SignIdentityFrom(args, ImageReference{});
    if (!identity.ok()) return UsageError(self, identity.error().message);
    options.sign_identity = *identity;
  }
  if (!options.dry_run) {
    auto policy = PolicyFrom(args);
    if (!policy.ok()) return Fail(self, policy.error());
    options.policy = *policy;
  }
  options.blob_parallel = std::max(1, args.Int("image-parallel-copies"));
  options.retry_times = args.Given("retry-times") ? args.Int("retry-times") : 0;
  if (args.Given("retry-delay")) {
    auto delay = ParseDuration(args.String("retry-delay"));
    if (!delay.ok()) return UsageError(self, delay.error().message);
    options.retry_delay = *delay;
  }
  if (args.Given("shard")) {
    auto shard = ParseShard(args.String("shard"));
    if (!shard.ok()) return UsageError(self, shard.error().message);
    std::tie(options.shard_index, options.shard_count) = *shard;
  }
  CliFilters cli;
  cli.include = args.List("include");
  cli.exclude = args.List("exclude");
  for (const std::string& p : args.List("platform")) {
    auto platform = ParsePlatform(p);
    if (!platform.ok()) return UsageError(self, platform.error().message);
    cli.platforms.push_back(*platform);
  }
  if (args.Bool("preserve-digests") && !options.format.empty()) {
    return UsageError(self, "--preserve-digests can't be kept with --format: a conversion is new");
  }
  if (args.Bool("preserve-digests") && !cli.platforms.empty()) {
    return UsageError(self,
                      "--preserve-digests can't be kept with --platform: a reduced index is new");
  }
  const bool quiet = args.Bool("quiet");
  // On a terminal: a live line per blob in flight and images done of all, the lines of each
  // image done above them.
  std::unique_ptr<ProgressDisplay> display;
  if (ShowProgress(args) && !options.dry_run) {
    display = std::make_unique<ProgressDisplay>(stderr);
    options.wrap_destination = [&display](ImageDestination& dst) {
      return WithProgress(dst, *display);
    };
    options.images_progress = [&display](size_t done, size_t total) {
      display->SetLabel("Syncing: " + std::to_string(done) + "/" + std::to_string(total) +
                        " images;");
    };
  }
  options.info = [quiet, &display](const std::string& line) {
    if (display) {
      display->Message(line);
    } else if (!quiet) {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  };
  options.warn = [&display](const std::string& line) {
    if (display) {
      display->Message("regfs sync: " + line);
    } else {
      std::fprintf(stderr, "regfs sync: %s\n", line.c_str());
    }
  };

  // Where blobs were seen, across processes and repositories: pushes mount what it knows.
  if (!options.dry_run) {
    auto known = BlobLocationCache::Open(BlobLocationCache::DefaultPath(), src_opts->log);
    src_opts->blob_locations = dst_opts->blob_locations = known;
  }
  options.dest_options = *dst_opts;

  const std::string& source = args.positional()[0];
  Result<std::vector<SyncSource>> sources = MakeError(EINVAL, "no source");
  if (src_kind == "docker") sources = DockerSources(source, *src_opts, cli);
  if (src_kind == "dir") sources = DirSources(source, cli);
  if (src_kind == "yaml") sources = YamlSources(source, *src_opts, cli);
  if (!sources.ok()) return Fail(self, sources.error());
  if (!cli.include.empty() || !cli.exclude.empty()) {
    for (const SyncSource& s : *sources) {
      if (!s.Listed() && s.ref.transport == Transport::kDocker) {
        std::fprintf(stderr,
                     "regfs sync: warning: --include/--exclude filter listed tags only; "
                     "%s names its tags\n",
                     s.ref.docker.Name().c_str());
      }
    }
  }

  RegistryClients clients(std::make_shared<HttpClient>());
  SyncReport report = Sync(*sources, options, clients);
  display.reset();

  int copied = 0, skipped = 0, failed = 0;
  std::string digests, lines;
  for (const SyncOutcome& o : report.outcomes) {
    if (o.action == "failed") ++failed;
    if (o.action == "skip") ++skipped;
    if (o.action == "copy" || o.action == "update") ++copied;
    if (options.dry_run) {
      std::printf("%-6s %s -> %s\n", o.action.c_str(), o.source.c_str(), o.destination.c_str());
    }
    if (!o.digest.empty() && o.action != "prune" && o.action != "failed") {
      digests += o.digest + " " + o.destination + "\n";
    }
    lines += ReportLine(o);
  }
  if (std::string file = args.String("digestfile"); !file.empty() && !options.dry_run) {
    if (Status s = WriteLines(file, digests); !s.ok()) return Fail(self, s.error());
  }
  if (std::string file = args.String("report"); !file.empty()) {
    if (Status s = WriteLines(file, lines); !s.ok()) return Fail(self, s.error());
  }
  std::fflush(stdout);  // the plan before the summary, on a terminal too
  if (!quiet) {
    const int n = copied + skipped;
    std::fprintf(stderr, "%s %d image%s (%d up to date)%s\n",
                 options.dry_run ? "Would sync" : "Synced", n, n == 1 ? "" : "s", skipped,
                 failed ? (", " + std::to_string(failed) + " failed").c_str() : "");
  }
  if (report.failed) {
    std::fprintf(stderr, "regfs sync: sync failed for one or more images (see above)\n");
    return 1;
  }
  return 0;
}

}  // namespace

const Command& SyncCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "sync";
    c.usage = "sync [options] --src TRANSPORT --dest TRANSPORT SOURCE DESTINATION";
    c.summary = "Synchronize images between registries and directories";
    c.details =
        "Source transports (--src): docker (REGISTRY/REPO: every tag; REGISTRY/REPO:TAG or\n"
        "@DIGEST: one image), dir (every image directory below SOURCE), yaml (skopeo's sync\n"
        "file: images, images-by-tag-regex, images-by-semver, credentials, tls-verify, cert-dir;\n"
        "plus include, exclude, platforms and target). Destination transports (--dest): docker\n"
        "(REGISTRY[/NS]), dir (a directory). Images go to DESTINATION/NAME:TAG, NAME being the\n"
        "repository's last component, or with --scoped its full REGISTRY/NS/REPO path.\n\n"
        "Images are synced --jobs at a time; one whose destination already has its digest is\n"
        "skipped after HEAD requests; a dir: image is replaced whole, never left half-written.\n"
        "--dry-run prints copy/update/skip per image and changes nothing. -f oci|v2s2 converts\n"
        "(and turns the HEAD-only skip off: a converted digest is known only once converted).\n"
        "Exit status: 0 all synced, 1 some images failed (with --keep-going, after trying\n"
        "all), 2 usage.";
    c.flags = {
        {"src", 's', FlagKind::kString, "SOURCE transport: docker, dir or yaml", ""},
        {"dest", 'd', FlagKind::kString, "DESTINATION transport: docker or dir", ""},
        {"all", 'a', FlagKind::kBool, "copy every platform of multi-platform images", ""},
        {"scoped", 0, FlagKind::kBool, "name destinations by the full source path", ""},
        {"append-suffix", 0, FlagKind::kString, "text appended to destination tags", ""},
        {"dry-run", 0, FlagKind::kBool, "print what would be done; change nothing", ""},
        {"keep-going", 0, FlagKind::kBool, "go on after an image fails (exit 1 at the end)", ""},
        {"preserve-digests", 0, FlagKind::kBool, "preserve digests of images and lists (refuse -f)",
         ""},
        {"digestfile", 0, FlagKind::kString,
         "write \"DIGEST DESTINATION\" for every image synced to FILE", ""},
        {"report", 0, FlagKind::kString,
         "write one JSON line per image (source, destination, digest, action, bytes, seconds, "
         "error) to FILE",
         ""},
        {"retry-delay", 0, FlagKind::kString,
         "wait between retries of an image (default 1s, doubling)", ""},
        {"jobs", 'j', FlagKind::kInt, "images synced at once", "4"},
        {"image-parallel-copies", 0, FlagKind::kInt, "blobs copied at once within an image", "6"},
        {"max-requests-per-registry", 0, FlagKind::kInt,
         "requests in flight to one registry at once (0: no limit)", "32"},
        {"include", 0, FlagKind::kList, "sync only tags matching REGEX (whole tag)", ""},
        {"exclude", 0, FlagKind::kList, "skip tags matching REGEX (whole tag)", ""},
        {"platform", 0, FlagKind::kList,
         "OS/ARCH[/VARIANT] to keep of multi-platform images (writes a reduced index)", ""},
        {"prune", 0, FlagKind::kBool,
         "delete destination tags of synced repositories that the source no longer has", ""},
        {"shard", 0, FlagKind::kString, "sync only the K-th of N slices of the repositories (K/N)",
         ""},
        {"tls-verify", 0, FlagKind::kBool, "deprecated: --src-tls-verify and --dest-tls-verify",
         "true"},
        {"format", 'f', FlagKind::kString,
         "MANIFEST TYPE (oci or v2s2) to use when syncing image(s) to a destination (default is "
         "manifest type of source, with fallbacks)",
         ""},
        {"quiet", 'q', FlagKind::kBool, "print no line per image", ""},
    };
    AddRegistryFlags(&c.flags, "src-", false);
    AddRegistryFlags(&c.flags, "dest-", true);
    AddRequestFlags(&c.flags);
    AddSigningFlags(&c.flags);
    AddPolicyFlags(&c.flags);
    c.min_args = c.max_args = 2;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
