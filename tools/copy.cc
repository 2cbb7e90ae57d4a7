// regfs copy SOURCE DESTINATION: one image (or with --all, every platform of an index) from
// any transport to any other, through the copy pipeline; digests are always preserved.
#include "transports/copy/copy.h"

#include <cstdio>

#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/signing.h"
#include "transports/alltransports/transports.h"

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
  options.all = args.Bool("all");
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
        "Transports: docker://HOST[:PORT]/REPO[:TAG|@DIGEST], dir:PATH, oci:PATH[:REF].\n"
        "Every blob is verified while it streams; blobs the destination has are skipped, blobs on\n"
        "the same registry are mounted across repositories, and the manifest is written last, so\n"
        "a failed copy leaves no tag. Manifests are copied byte for byte: digests are preserved.\n"
        "The source must be accepted by the signature policy (containers-policy.json(5)) before\n"
        "anything is written. Its signatures are copied along (--remove-signatures drops them);\n"
        "--sign-by-sigstore-private-key and --sign-by add one of the copied manifest.";
    c.flags = {{"all", 'a', FlagKind::kBool, "copy every platform of a multi-platform image", ""}};
    AddRegistryFlags(&c.flags, "src-", false);
    AddRegistryFlags(&c.flags, "dest-", true);
    AddRequestFlags(&c.flags);
    AddSigningFlags(&c.flags);
    AddPolicyFlags(&c.flags);
    c.flags.push_back({"image-parallel-copies", 0, FlagKind::kInt, "blobs copied at once", "6"});
    c.flags.push_back({"quiet", 'q', FlagKind::kBool, "print no progress", ""});
    c.min_args = c.max_args = 2;
    c.operands = Operands::kImages;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
