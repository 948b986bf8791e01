// libFuzzer target for the datagram decoder (Protocol.md §5). Built together with the core's
// sources as one module, so it needs no package machinery:
//
//   swiftc -sanitize=fuzzer,address -package-name starling -parse-as-library -O -wmo \
//       $(find Sources/StarlingCore -name '*.swift') Tests/Fuzz/FuzzDecode.swift -o .build/fuzz-decode
//   .build/fuzz-decode Tests/Fuzz/corpus -max_total_time=60     # fuzz (new inputs go to the corpus)
//   .build/fuzz-decode Tests/Fuzz/corpus/* -runs=0               # replay the corpus only (CI)
//
// The corpus holds version 1 datagrams (now refused at the version byte) and `v2-*` seeds: three
// datagrams of every version 2 type, plain and keyed, one with an extension area (written with
// the Peer fuzz interpreter's message builder). Any crash found is saved by libFuzzer as crash-<hash>: copy it into Tests/Fuzz/corpus so that
// CodecTests.testFuzzCorpusDecodesWithoutTrapping keeps it as a regression test.

private let fuzzKey = AuthKey(Array(0..<32))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecode(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    for codec in [Codec(), Codec(keys: [fuzzKey])] {
        guard let message = try? codec.decode(bytes) else { continue }
        // Whatever decodes must re-encode to the very same bytes: the codec is symmetric.
        guard let again = try? codec.encode(message), again.elementsEqual(bytes) else {
            fatalError("decoded message does not re-encode to its bytes: \(message)")
        }
    }
    return 0
}
