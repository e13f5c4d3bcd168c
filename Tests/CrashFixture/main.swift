// A process for crash tests that must run with the Swift runtime's own
// crash handler installed, which Swift Testing's exit tests turn off.
//
//     pmemtrack-crash-fixture foreign PATH   tracked write, then a null dereference
import Foundation
import PmemTrack

let arguments = CommandLine.arguments
guard arguments.count == 3, arguments[1] == "foreign" else {
    FileHandle.standardError.write("usage: pmemtrack-crash-fixture foreign PATH\n".data(using: .utf8)!)
    exit(2)
}
let map = try TrackedMapping(path: arguments[2], length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
map.bytes[4096] = 1
print("tracked write ok: dirty \(map.dirtyRanges())")
fflush(nil)
UnsafeMutablePointer<Int>(bitPattern: 8)!.pointee = 1
print("unreachable")
