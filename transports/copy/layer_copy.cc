#include "transports/copy/layer_copy.h"

#include <memory>

#include "transports/copy/copy.h"
#include "transports/util/digest.h"

namespace regfs {

Result<int64_t> StreamVerified(ImageSource& src, const BlobInfo& blob,
                               const std::atomic<bool>* cancel, const ByteSink& sink) {
  Sha256 hash;
  int64_t n = 0;
  RETURN_IF_ERROR(src.GetBlob(blob, [&](const char* data, size_t len) -> Status {
    if (cancel && cancel->load()) return MakeError(ECANCELED, "cancelled");
    hash.Update(data, len);
    n += static_cast<int64_t>(len);
    if (blob.size >= 0 && n > blob.size) {
      return MakeError(
          EIO, "source sent more than the " + std::to_string(blob.size) + " bytes expected");
    }
    return sink(data, len);
  }));
  if (blob.size >= 0 && n != blob.size) {
    return MakeError(EIO, "size mismatch: expected " + std::to_string(blob.size) + " bytes, got " +
                              std::to_string(n));
  }
  std::string got = hash.Finish();
  if (got != blob.digest) {
    return MakeError(EIO,
                     "digest mismatch: the content has digest " + got + ", not " + blob.digest);
  }
  return n;
}

namespace {

// What is done with a stream found to be compressed with `detected`, as containers/image
// decides (copy/compression.go): compress uncompressed layers for a destination that wants
// them compressed, recompress only when another algorithm is asked for explicitly, decompress
// for a destination that wants them uncompressed; else keep the bytes.
struct Step {
  bool decode = false;
  std::optional<Compression> encode;
};

Step Decide(const LayerEncoding& enc, Compression labelled, Compression detected) {
  Step s;
  if (enc.want == LayerCompression::kCompress) {
    Compression target = enc.format.value_or(Compression::kGzip);
    if (detected == Compression::kNone &&
        (enc.compress_labelled_uncompressed || labelled != Compression::kNone)) {
      s.encode = target;
    } else if (enc.format && *enc.format != detected) {
      s.decode = true;
      s.encode = target;
    }
  } else if (enc.want == LayerCompression::kDecompress && detected != Compression::kNone) {
    s.decode = true;
  }
  return s;
}

// The written blob's hash (of re-encoded bytes: others are the source's, verified already)
// and size, in front of the destination's writer.
class HashingWriter {
 public:
  HashingWriter(std::unique_ptr<BlobWriter> w, bool hash) : writer_(std::move(w)), hash_on_(hash) {}
  Status Write(const char* data, size_t n) {
    if (hash_on_) hash_.Update(data, n);
    size_ += static_cast<int64_t>(n);
    return writer_->Write(data, n);
  }
  BlobWriter& writer() { return *writer_; }
  std::string Finish() { return hash_.Finish(); }
  int64_t size() const { return size_; }

 private:
  std::unique_ptr<BlobWriter> writer_;
  const bool hash_on_;
  Sha256 hash_;
  int64_t size_ = 0;
};

}  // namespace

bool MayReencode(const LayerEncoding& enc, const std::string& media_type) {
  return enc.want != LayerCompression::kPreserve &&
         LayerMediaTypeCompression(media_type).has_value();
}

Result<LayerCopied> CopyLayer(ImageSource& src, ImageDestination& dst, const BlobInfo& blob,
                              const LayerEncoding& enc, const std::atomic<bool>* cancel) {
  LayerCopied result;
  result.written = LayerWritten{blob.digest, blob.size, std::nullopt};
  std::optional<Compression> labelled = LayerMediaTypeCompression(blob.media_type);
  if (!MayReencode(enc, blob.media_type)) {
    ASSIGN_OR_RETURN(result.copied, CopyBlob(src, dst, blob, cancel, &result.moved));
    return result;
  }
  std::shared_ptr<void> lock = dst.LockBlob(blob);
  // A layer its media type says would be kept as it is may be at the destination already.
  Step predicted = Decide(enc, *labelled, *labelled);
  if (!predicted.decode && !predicted.encode) {
    ASSIGN_OR_RETURN(bool reused, dst.TryReuseBlob(blob, src.RegistryLocation()));
    if (reused) return result;
  }
  // About to compress a layer known to be uncompressed (it decompressed to this digest in an
  // earlier copy): a compressed variant the destination has or can mount does instead.
  if (enc.want == LayerCompression::kCompress && enc.variants &&
      Decide(enc, *labelled, Compression::kNone).encode) {
    Compression target = enc.format.value_or(Compression::kGzip);
    for (const BlobLocationCache::Variant& v : enc.variants->CompressedVariants(blob.digest)) {
      if (v.compression != CompressionName(target)) continue;
      BlobInfo candidate{v.digest, v.size, blob.media_type};
      std::shared_ptr<void> variant_lock = dst.LockBlob(candidate);
      auto reused = dst.TryReuseBlob(candidate, src.RegistryLocation());
      if (reused.ok() && *reused) {
        result.written = LayerWritten{v.digest, v.size, target};
        return result;
      }
    }
  }

  std::unique_ptr<HashingWriter> out;
  Step step;
  Compression detected = Compression::kNone;
  auto choose = [&](Compression found) -> Result<std::unique_ptr<StreamCodec>> {
    detected = found;
    step = Decide(enc, *labelled, found);
    const bool reencode = step.decode || step.encode;
    ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> w,
                     dst.NewBlobWriter(reencode ? BlobInfo{"", -1, blob.media_type} : blob));
    out = std::make_unique<HashingWriter>(std::move(w), reencode);
    ByteSink to_dst = [&out](const char* data, size_t n) { return out->Write(data, n); };
    if (!reencode) return NewDecoder(Compression::kNone, to_dst);
    if (!step.decode) return NewEncoder(*step.encode, enc.level, to_dst);
    if (!step.encode) return NewDecoder(found, to_dst);
    // Decoder → encoder: the decoder's output is the encoder's input.
    ASSIGN_OR_RETURN(std::shared_ptr<StreamCodec> encoder,
                     NewEncoder(*step.encode, enc.level, to_dst));
    ASSIGN_OR_RETURN(std::unique_ptr<StreamCodec> decoder,
                     NewDecoder(found, [encoder](const char* data, size_t n) {
                       return encoder->Write(data, n);
                     }));
    struct Chain final : StreamCodec {
      std::unique_ptr<StreamCodec> first;
      std::shared_ptr<StreamCodec> second;
      Status Write(const char* d, size_t n) override { return first->Write(d, n); }
      Status Finish() override {
        RETURN_IF_ERROR(first->Finish());
        return second->Finish();
      }
    };
    auto chain = std::make_unique<Chain>();
    chain->first = std::move(decoder);
    chain->second = std::move(encoder);
    return std::unique_ptr<StreamCodec>(std::move(chain));
  };
  std::unique_ptr<StreamCodec> codec = NewSniffingCodec(choose);

  auto streamed = StreamVerified(
      src, blob, cancel, [&](const char* data, size_t len) { return codec->Write(data, len); });
  if (!streamed.ok()) return std::move(streamed).error();
  const int64_t n = *streamed;
  Status finished = codec->Finish();
  if (!finished.ok()) {
    return Annotate(std::move(finished).error(),
                    std::string("decoding the layer as ") + std::string(CompressionName(detected)));
  }
  const bool reencoded = step.decode || step.encode;
  BlobInfo written{reencoded ? out->Finish() : blob.digest, reencoded ? out->size() : n,
                   blob.media_type};
  RETURN_IF_ERROR(out->writer().Commit(written));
  result.copied = true;
  result.moved = n;
  result.reencoded = reencoded;
  result.written.digest = written.digest;
  result.written.size = written.size;
  if (reencoded && enc.variants && step.decode != step.encode.has_value()) {
    // Compressed or decompressed (not recompressed): both digests are verified ones.
    if (step.encode) {
      enc.variants->RecordVariant(written.digest, blob.digest,
                                  std::string(CompressionName(*step.encode)), written.size);
    } else {
      enc.variants->RecordVariant(blob.digest, written.digest,
                                  std::string(CompressionName(detected)), blob.size);
    }
  }
  if (reencoded) {
    result.written.compression = step.encode.value_or(Compression::kNone);
  } else if (detected != Compression::kNone) {
    result.written.compression = detected;  // as containers/image: the type follows the bytes
  }
  return result;
}

}  // namespace regfs
