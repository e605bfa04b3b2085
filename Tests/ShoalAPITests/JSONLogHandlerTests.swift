import Foundation
import Logging
import ShoalAPI
import Synchronization
import Testing
import ShoalLogging

@Suite struct JSONLogHandlerTests {
    @Test func eachLineIsOneJSONObjectWithItsMetadata() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "shoal.test") { JSONLogHandler(label: $0) { line in lines.withLock { $0.append(line) } } }
        logger[metadataKey: "service"] = "a"
        logger.info("lease granted \"quoted\"\nsecond line", metadata: [
            "lease": "L-000001", "host": "c1", "tasks": .array(["262147", "262148"]), "nested": .dictionary(["k": "v\t"]),
        ])
        logger.debug("not written: below the level")

        let written = lines.withLock { $0 }
        try #require(written.count == 1)
        #expect(written[0].hasSuffix("\n"))
        #expect(written[0].dropLast().contains("\n") == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "shoal.test")
        #expect(object["message"] as? String == "lease granted \"quoted\"\nsecond line")
        let time = try #require(object["time"] as? String)
        #expect(ISO8601DateFormatter.withFractionalSeconds.date(from: time) != nil, "\(time)")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["service"] as? String == "a")
        #expect(metadata["lease"] as? String == "L-000001")
        #expect(metadata["host"] as? String == "c1")
        #expect(metadata["tasks"] as? [String] == ["262147", "262148"])
        #expect((metadata["nested"] as? [String: String])?["k"] == "v\t")
    }

    @Test func controlCharactersAreEscaped() throws {
        let line = JSONLogHandler.line(time: "t", level: .error, label: "l", message: "a\u{1}b\\c", metadata: [:])
        #expect(line == #"{"time":"t","level":"error","label":"l","message":"a\u0001b\\c","metadata":{}}"# + "\n")
        _ = try JSONSerialization.jsonObject(with: Data(line.utf8))
    }
}

extension ISO8601DateFormatter {
    fileprivate static var withFractionalSeconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
