// regfs inspect IMAGE: skopeo's inspect output (or with --raw the manifest, with --config the
// configuration), byte for byte.
#include "transports/image/inspect.h"

#include <cstdio>
#include <future>

#include "tools/commands.h"
#include "transports/alltransports/transports.h"

namespace regfs::cli {
namespace {

void WriteOut(const std::string& bytes) { std::fwrite(bytes.data(), 1, bytes.size(), stdout); }

int Run(const Command& self, const Args& args) {
  auto ref = ParseImageReference(args.positional()[0]);
  if (!ref.ok()) return Fail(self, ref.error());
  auto opts = RegistryOptionsFrom(args, "");
  if (!opts.ok()) return Fail(self, opts.error());
  RegistryClients clients(std::make_shared<HttpClient>());
  auto opened = OpenImageSource(*ref, *opts, clients);
  if (!opened.ok()) return Fail(self, opened.error());
  std::unique_ptr<ImageSource> src = std::move(opened).value();
  // Tags are listed at the origin, as skopeo lists them, whether or not the image comes through
  // registries.conf mirrors; with none, by the source's own client.
  std::shared_ptr<RegistryClient> client;
  if (ref->transport == Transport::kDocker) client = clients.Get(ref->docker.registry, *opts);
  bool raw = args.Bool("raw"), config = args.Bool("config");
  if (raw && !config) {
    auto m = src->GetManifest("");
    if (!m.ok()) return Fail(self, m.error());
    WriteOut(m->bytes);
    return 0;
  }
  // The tag list is wanted only for the plain output: fetched meanwhile, on a second connection.
  std::future<Result<std::vector<std::string>>> listing;
  if (client && !config && !args.Bool("no-tags")) {
    listing =
        std::async(std::launch::async, [&] { return client->ListTags(ref->docker.repository); });
  }
  auto image = ResolveImage(*src, HostPlatform());
  if (!image.ok()) return Fail(self, image.error());
  if (config) {
    if (raw) {
      WriteOut(image->config);
      return 0;
    }
    auto json = OciConfigJson(image->config);
    if (!json.ok()) return Fail(self, json.error());
    WriteOut(*json);
    return 0;
  }
  std::vector<std::string> tags;
  if (listing.valid()) {
    auto listed = listing.get();
    if (listed.ok()) {
      tags = std::move(listed).value();
    } else if (listed.error().errnum != EACCES) {
      return Fail(self, Annotate(listed.error(), "determining repository tags"));
    }
  }
  // Name is the image's docker reference where it has one, as skopeo prints it.
  const bool named = ref->transport == Transport::kDocker ||
                     (ref->transport == Transport::kDockerDaemon && ref->daemon_image_id.empty());
  WriteOut(InspectJson(*image, named ? ref->docker.Name() : "", tags));
  return 0;
}

}  // namespace

const Command& InspectCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "inspect";
    c.usage = "inspect [options] IMAGE";
    c.summary = "Inspect an image: digest, tags, layers, platform, labels";
    c.details =
        "For a multi-platform image, the instance for this machine's platform is described and\n"
        "Digest is the index's.";
    c.flags = {{"raw", 0, FlagKind::kBool,
                "print the manifest (or with --config the config) as stored", ""},
               {"config", 0, FlagKind::kBool, "print the image configuration", ""},
               {"no-tags", 'n', FlagKind::kBool, "do not list the repository's tags", ""}};
    AddRegistryFlags(&c.flags, "", true);
    AddDaemonHostFlag(&c.flags, "");
    AddRequestFlags(&c.flags);
    c.min_args = c.max_args = 1;
    c.operands = Operands::kImages;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
