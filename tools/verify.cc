// regfs verify IMAGE: whether the signature policy accepts an image, and what each of its
// signatures says. Exit 0 only if accepted.
#include <cstdio>

#include "tools/commands.h"
#include "tools/signing.h"
#include "transports/alltransports/transports.h"

namespace regfs::cli {
namespace {

const char* FormatName(const Signature& sig) {
  return sig.format == Signature::Format::kSigstore ? "sigstore" : "simple signing";
}

// Prints the verdict on one manifest; true when accepted.
bool Report(const std::string& what, const RawManifest& m, const std::vector<Signature>& sigs,
            const PolicyVerdict& v) {
  std::printf("%s %s\n", what.c_str(), m.digest.c_str());
  for (size_t i = 0; i < sigs.size(); ++i) {
    const SignatureVerdict* sv = i < v.signatures.size() ? &v.signatures[i] : nullptr;
    std::printf("  signature %zu (%s): %s%s%s\n", i + 1, FormatName(sigs[i]),
                !sv            ? "not checked"
                : sv->accepted ? "verified"
                               : "not accepted",
                sv && !sv->reason.empty() ? ": " : "", sv ? sv->reason.c_str() : "");
  }
  if (sigs.empty()) std::printf("  no signatures\n");
  if (v.accepted) {
    std::printf("  accepted by %s\n", v.accepted_by.c_str());
  } else {
    std::printf("  rejected: %s\n", v.reason.c_str());
  }
  return v.accepted;
}

int Run(const Command& self, const Args& args) {
  auto ref = ParseImageReference(args.positional()[0]);
  if (!ref.ok()) return Fail(self, ref.error());
  auto opts = RegistryOptionsFrom(args, "");
  if (!opts.ok()) return Fail(self, opts.error());
  auto registries_d = RegistriesDFrom(args);
  if (!registries_d.ok()) return Fail(self, registries_d.error());
  opts->registries_d = *registries_d;
  auto policy = PolicyFrom(args);
  if (!policy.ok()) return Fail(self, policy.error());

  RegistryClients clients(std::make_shared<HttpClient>());
  auto src = OpenImageSource(*ref, *opts, clients);
  if (!src.ok()) return Fail(self, Annotate(src.error(), "opening " + ref->String()));
  auto top = (*src)->GetManifest("");
  if (!top.ok()) return Fail(self, Annotate(top.error(), "reading " + ref->String()));
  auto sigs = (*src)->GetSignatures(top->digest, false);
  if (!sigs.ok()) return Fail(self, Annotate(sigs.error(), "reading signatures"));
  const ImageReference policy_ref = PolicyReference(*ref);
  auto evaluate = [&](const RawManifest& m, const std::vector<Signature>& s) {
    return EvaluatePolicy(**policy, PolicyImage{policy_ref, m.bytes, s});
  };
  if (Report(ref->String(), *top, *sigs, evaluate(*top, *sigs))) return 0;

  // As copy decides: an index the policy refuses is accepted for the instances it would copy
  // if each of those is accepted by its own signatures.
  auto parsed = ParseManifest(top->bytes, top->media_type);
  if (!parsed.ok() || !parsed->is_index) return 1;
  std::vector<Descriptor> instances;
  if (args.Bool("all")) {
    instances = parsed->manifests;
  } else {
    auto chosen = ChooseInstance(*parsed, HostPlatform());
    if (!chosen.ok()) return Fail(self, chosen.error());
    instances.push_back(*chosen);
  }
  bool all_accepted = true;
  for (const Descriptor& d : instances) {
    auto inst = (*src)->GetManifest(d.digest);
    if (!inst.ok()) return Fail(self, Annotate(inst.error(), "reading instance " + d.digest));
    auto inst_sigs = (*src)->GetSignatures(d.digest, true);
    if (!inst_sigs.ok()) return Fail(self, Annotate(inst_sigs.error(), "reading signatures"));
    all_accepted &= Report("instance", *inst, *inst_sigs, evaluate(*inst, *inst_sigs));
  }
  return all_accepted ? 0 : 1;
}

}  // namespace

const Command& VerifyCommand() {
  static const Command kCommand = [] {
    Command c;
    c.name = "verify";
    c.usage = "verify [options] IMAGE";
    c.summary = "Check an image's signatures against the signature policy";
    c.details =
        "Prints the manifest digest, one line per signature (verified, or why not), and whether\n"
        "the policy (containers-policy.json(5): --policy, else the default files) accepts the\n"
        "image. Exit status 0 only if it is accepted, 1 if not. A multi-platform image whose\n"
        "index the policy refuses is accepted when the instance copy would take (--all: every\n"
        "instance) is accepted by its own signatures, as copy decides.";
    c.flags = {{"all", 'a', FlagKind::kBool, "check every instance of a refused index", ""}};
    AddPolicyFlags(&c.flags);
    AddRegistryFlags(&c.flags, "", true);
    AddRequestFlags(&c.flags);
    c.min_args = c.max_args = 1;
    c.operands = Operands::kImages;
    c.run = Run;
    return c;
  }();
  return kCommand;
}

}  // namespace regfs::cli
