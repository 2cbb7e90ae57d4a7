// libFuzzer target: signatures as they arrive — signature-N blobs (lookaside, dir:;
// SignatureFromBlob), sigstore payloads (ParseSigstorePayload), simple-signing plaintexts
// (ParseSimpleSigningPayload, what VerifySimpleSigning parses once gpgme has checked the
// signature), sigstore attachment manifests (AttachedSignatureKeys, SignaturesFromAttachment
// with the blobs in the input, AppendToAttachment). The first byte chooses which.
// Invariants: a parsed blob or payload written out parses to the same thing; a signature
// appended to an attachment is found in the new attachment.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_input.h"
#include "transports/signature/sigstore.h"
#include "transports/signature/simple_signing.h"
#include "transports/types/signature.h"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::AsText(data, size);
  switch (fuzz::TakeSelector(&text, 6)) {
    case 0: {
      auto sig = SignatureFromBlob(text);
      if (!sig.ok()) break;
      // A bare simple-signing blob must start as OpenPGP does; one written with the
      // "\0simple-signing\n" prefix need not, and is written back bare.
      if (sig->format == Signature::Format::kSimpleSigning &&
          (sig->simple_signing.empty() || !(sig->simple_signing[0] & 0x80))) {
        break;
      }
      auto again = SignatureFromBlob(SignatureBlob(*sig));
      REGFS_FUZZ_CHECK(again.ok() && *again == *sig);
      break;
    }
    case 1: {
      auto p = ParseSigstorePayload(text);
      if (!p.ok()) break;
      auto json = SigstorePayloadJson(*p);
      if (p->docker_reference.empty()) break;  // refused when writing
      REGFS_FUZZ_CHECK(json.ok());
      auto again = ParseSigstorePayload(*json);
      REGFS_FUZZ_CHECK(again.ok() && *again == *p);
      break;
    }
    case 2:
      (void)ParseSimpleSigningPayload(text);
      break;
    case 3:
      (void)AttachedSignatureKeys(text);
      break;
    case 4: {
      // The manifest, then the blobs it names (by "sha256:@N").
      std::vector<fuzz::File> files = fuzz::SplitFiles(text);
      std::string manifest = files[0].name + "\n" + files[0].content;
      AttachmentBlobFetcher fetch = [&](const std::string& digest, int64_t) -> Result<std::string> {
        for (const fuzz::File& f : files) {
          if (DigestOf(f.content) == digest) return f.content;
        }
        return MakeError(ENOENT, "no blob " + digest);
      };
      (void)SignaturesFromAttachment(manifest, fetch);
      break;
    }
    case 5: {
      Signature sig;
      sig.format = Signature::Format::kSigstore;
      sig.mime_type = kSigstoreSignatureMimeType;
      sig.payload = "{\"critical\":{}}";
      sig.annotations[kSigstoreSignatureAnnotation] = "MEUCIQ==";
      auto a = AppendToAttachment(text, {sig});
      if (!a.ok()) break;
      auto keys = AttachedSignatureKeys(a->manifest);
      REGFS_FUZZ_CHECK(keys.ok());
      bool found = false;
      for (const auto& k : *keys) found = found || k == AttachedSignatureKeyOf(sig);
      REGFS_FUZZ_CHECK(found);
      break;
    }
  }
  return 0;
}
