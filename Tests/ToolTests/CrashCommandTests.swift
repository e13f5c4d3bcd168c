import ArgumentParser
import Testing
@testable import PmemTrackCLI

@Suite("pmemtrack crash")
struct CrashCommandTests {
    @Test("wal passes; a seeded bug exits 1; bad arguments are refused")
    func exitStatus() throws {
        try CrashCommand.parse(["wal", "--tracking", "mprotect"]).run()
        #expect(throws: ExitCode(1)) { try CrashCommand.parse(["--bug", "acknowledge-before-sync", "--tracking", "mprotect"]).run() }
        #expect(throws: ExitCode(1)) { try CrashCommand.parse(["--bug", "commit-word-straddles", "--model", "page-cache-512"]).run() }
        try CrashCommand.parse(["--list-bugs"]).run()
        for arguments in [["--bug", "nope"], ["--model", "adrr"], ["--budget", "0"], ["--budget", "-1"], ["nosuch"], ["--model", "page-cache-100"]] {
            #expect(throws: (any Error).self, "\(arguments)") { try CrashCommand.parse(arguments) }
        }
    }
}
