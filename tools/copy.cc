// regfs copy SOURCE DESTINATION: one image (or with --all, every platform of an index) from
// any transport to any other, through the copy pipeline; digests are preserved unless a
// conversion (-f, --dest-compress…) is asked for.
#include "transports/copy/copy.h"

#include <cstdio>

#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/signing.h"
#include "transports/alltransports/transports.h"
#include "transports/compression/compression.h"

namespace regfs::cli {
namespace {

int Run(const Command& self, const Args& args) {
  auto src_ref = ParseImageReference(args.positional()[0]);
  if (!src_ref.ok()) return Fail(self, src_ref.error());
  auto dst_ref = ParseImageReference(args.positional()[1]);
  if (!dst_ref.ok()) return Fail(self, dst_ref.error());
  auto src_opts = RegistryOptionsFrom(args, "src-");
  if (!src_opts.ok()) return Fail(self, src_opts.error());
  auto dst_opts = RegistryOptionsFrom(args, "dest-");
  if (!dst_opts.ok()) return Fail(self, dst_opts.error());
  auto registries_d = RegistriesDFrom(args);
  if (!registries_d.ok()) return Fail(self, registries_d.error());
  src_opts->registries_d = dst_opts->registries_d = *registries_d;
  auto policy = PolicyFrom(args);
  if (!policy.ok()) return Fail(self, policy.error());
  auto signers = SignersFrom(args);
  if (!signers.ok()) return Fail(self, signers.error());
  auto identity = SignIdentityFrom(args, *dst_ref);
  if (!identity.ok()) return Fail(self, identity.error());

  if (src_ref->transport == Transport::kDocker || dst_ref->transport == Transport::kDocker) {
    // Where blobs were seen before, by any command or mount: pushes mount what it knows.
    auto known = BlobLocationCache::Open(BlobLocationCache::DefaultPath(), src_opts->log);
    src_opts->blob_locations = dst_opts->blob_locations = known;
  }
  RegistryClients clients(std::make_shared<HttpClient>());
  auto src = OpenImageSource(*src_ref, *src_opts, clients);
  if (!src.ok())
    return Fail(self, Annotate(src.error(), "initializing source " + src_ref->String()));
  auto dst = OpenImageDestination(*dst_ref, *dst_opts, clients);
  if (!dst.ok()) {
    return Fail(self, Annotate(dst.error(), "initializing destination " + dst_ref->String()));
  }
  CopyOptions options;
  auto format = ManifestFormatFrom(args);
  if (!format.ok()) return UsageError(self, format.error().message);
  options.format = *format;
  if (args.Bool("dest-compress") && args.Bool("dest-decompress")) {
    return UsageError(self, "Cannot compress and decompress at the same time");
  }
  if (args.Bool("dest-compress")) options.layer_compression = LayerCompression::kCompress;
  if (args.Bool("dest-decompress")) options.layer_compression = LayerCompression::kDecompress;
  if (args.Given("dest-compress-format")) {
    auto c = ParseCompressionName(args.String("dest-compress-format"));
    if (!c.ok()) return UsageError(self, c.error().message);
    options.compress_format = *c;
  }
  if (args.Given("dest-compress-level")) options.compress_level = args.Int("dest-compress-level");
  options.all = args.Bool("all");
  options.preserve_digests = args.Bool("preserve-digests");
  if (dst_opts->blob_locations) options.blob_info = dst_opts->blob_locations.get();
  options.remove_signatures = args.Bool("remove-signatures");
  options.accept_source = PolicyCheck(*policy, *src_ref);
  options.accept_needs_signatures = PolicyNeedsSignatures(**policy, PolicyReference(*src_ref));
  for (const auto& signer : *signers) options.signers.push_back(signer.get());
  options.sign_identity = *identity;
  if (args.Given("image-parallel-copies"))
    options.parallel = std::max(1, args.Int("image-parallel-copies"));
  // On a terminal, a live line per blob in flight; the pipeline's other events as lines.
  std::unique_ptr<ProgressDisplay> display;
  std::unique_ptr<ImageDestination> shown;
  if (ShowProgress(args)) {
    display = std::make_unique<ProgressDisplay>(stderr);
    shown = WithProgress(**dst, *display);
    options.progress = [&display](const std::string& line) {
      if (line.rfind("Copying blob ", 0) != 0) display->Message(line);
    };
  }
  auto copied = CopyImage(**src, shown ? *shown : **dst, options);
  display.reset();
  if (!copied.ok()) return Fail(self, copied.error());
  return 0;
}

}  // namespace

const Command& CopyCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "copy";
    c.usage = "copy [options] SOURCE-IMAGE DESTINATION-IMAGE";
    c.summary = "Copy an image from one location to another";
    c.details =
        "Transports: docker://HOST[:PORT]/REPO[:TAG|@DIGEST], dir:PATH, oci:PATH[:REF],\n"
        "oci-archive:PATH[:REF] (a tar of an OCI layout), docker-archive:PATH[:REF|@N] (a\n"
        "`docker save` tarball: REF names a RepoTags entry, @N the Nth image of manifest.json;\n"
        "as a destination, REF is the tag written; gzip- and zstd-compressed archives are read),\n"
        "docker-daemon:NAME:TAG (a source may also be NAME@DIGEST or an image ID, sha256:HEX;\n"
        "the engine is --src-daemon-host / --dest-daemon-host, else $DOCKER_HOST, else\n"
        "unix:///var/run/docker.sock).\n"
        "Every blob is verified while it streams; blobs the destination has are skipped, blobs on\n"
        "the same registry are mounted across repositories, and the manifest is written last, so\n"
        "a failed copy leaves no tag. Manifests are copied byte for byte: digests are preserved,\n"
        "unless a conversion is asked for: -f oci|v2s2 writes that manifest type (the config is\n"
        "converted for v2s2 -> oci); --dest-compress-format gzip|zstd (and -level) compresses\n"
        "uncompressed layers where they are compressed (a registry; dir: and oci: with\n"
        "--dest-compress) and recompresses layers of another algorithm; --dest-decompress stores\n"
        "dir: and oci: layers uncompressed. Layers are re-encoded while they stream (zstd on\n"
        "two threads), the same input and flags give the same digests, and what the format\n"
        "can't carry (zstd in v2s2) is refused before anything is written. With a conversion\n"
        "asked for, a registry gets uncompressed layers compressed (gzip unless told), as skopeo\n"
        "pushes them; a compressed original an earlier copy decompressed is reused where the\n"
        "destination has it. A conversion can't keep the source's signatures: it fails unless\n"
        "--remove-signatures; --preserve-digests refuses any conversion.\n"
        "The source must be accepted by the signature policy (containers-policy.json(5)) before\n"
        "anything is written. Its signatures are copied along (--remove-signatures drops them);\n"
        "--sign-by-sigstore-private-key and --sign-by add one of the copied manifest.";
    c.flags = {{"all", 'a', FlagKind::kBool, "copy every platform of a multi-platform image", ""}};
    AddRegistryFlags(&c.flags, "src-", false);
    AddRegistryFlags(&c.flags, "dest-", true);
    AddDaemonHostFlag(&c.flags, "src-");
    AddDaemonHostFlag(&c.flags, "dest-");
    AddRequestFlags(&c.flags);
    AddSigningFlags(&c.flags);
    AddPolicyFlags(&c.flags);
    c.flags.push_back({"image-parallel-copies", 0, FlagKind::kInt, "blobs copied at once", "6"});
    c.flags.push_back({"format", 'f', FlagKind::kString,
                       "MANIFEST TYPE (oci or v2s2) to use in the destination (default is manifest "
                       "type of source, with fallbacks)",
                       ""});
    c.flags.push_back({"preserve-digests", 0, FlagKind::kBool,
                       "preserve digests of images and lists (refuse any conversion)", ""});
    c.flags.push_back({"dest-compress", 0, FlagKind::kBool,
                       "compress layers when saving to a dir: or oci: destination", ""});
    c.flags.push_back({"dest-decompress", 0, FlagKind::kBool,
                       "decompress layers when saving to a dir: or oci: destination", ""});
    c.flags.push_back({"dest-compress-format", 0, FlagKind::kString,
                       "FORMAT to use for the compression (gzip or zstd)", ""});
    c.flags.push_back({"dest-compress-level", 0, FlagKind::kInt,
                       "LEVEL to use for the compression (gzip -2..9, default: skopeo's output "
                       "size, at less CPU than 6; zstd 1..22, default 3)",
                       ""});
    c.flags.push_back({"quiet", 'q', FlagKind::kBool, "print no progress", ""});
    c.min_args = c.max_args = 2;
    c.operands = Operands::kImages;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
