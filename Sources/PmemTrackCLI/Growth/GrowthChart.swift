import Foundation

/// An SVG picture of the growth experiment: two panels side by side, bytes
/// flushed per sync and sync time, against the epoch, one line per policy.
/// Both y axes are logarithmic, since the policies differ by orders of
/// magnitude.
struct GrowthChart {
    var title: String
    var samples: [GrowthExperiment.Sample]

    static let colors: [FlushPolicy: String] = [
        .cleanOnSync: "#1b7837", .neverClean: "#c51b7d", .flushEverything: "#2166ac",
    ]

    func svg() -> String {
        let panelWidth = 460.0, panelHeight = 300.0, left = 70.0, top = 60.0, gap = 110.0
        var body = ""
        let panels: [(String, (GrowthExperiment.Sample) -> Double, Double, (Double) -> String)] = [
            // Bytes on a base-2 axis, so that ticks fall on whole KiB, MiB, GiB.
            ("Bytes flushed per sync", { Double(max($0.bytesFlushed, 1)) }, 2, { ByteCount.format(Int($0)) }),
            ("Sync time", { max($0.syncSeconds, 1e-7) }, 10, { Report.duration($0) }),
        ]
        for (index, panel) in panels.enumerated() {
            let x0 = left + Double(index) * (panelWidth + gap)
            body += plot(panel.0, value: panel.1, base: panel.2, label: panel.3, x0: x0, y0: top, width: panelWidth, height: panelHeight)
        }
        let legendY = top + panelHeight + 55
        for (i, policy) in FlushPolicy.allCases.enumerated() where samples.contains(where: { $0.policy == policy }) {
            let x = left + Double(i) * 220
            body += "<line x1='\(x)' y1='\(legendY)' x2='\(x + 28)' y2='\(legendY)' stroke='\(Self.colors[policy]!)' stroke-width='3'/>"
            body += "<text x='\(x + 36)' y='\(legendY + 5)'>\(policy.rawValue)</text>"
        }
        let width = left + 2 * panelWidth + gap + 30, height = legendY + 30
        return """
            <svg xmlns='http://www.w3.org/2000/svg' width='\(Int(width))' height='\(Int(height))' font-family='sans-serif' font-size='13'>
            <rect width='100%' height='100%' fill='white'/>
            <text x='\(left)' y='28' font-size='16' font-weight='bold'>\(escape(title))</text>
            \(body)
            </svg>

            """
    }

    private func plot(
        _ name: String, value: (GrowthExperiment.Sample) -> Double, base: Double, label: (Double) -> String,
        x0: Double, y0: Double, width: Double, height: Double
    ) -> String {
        let values = samples.map(value)
        let epochs = samples.map(\.epoch)
        func logarithm(_ v: Double) -> Double { log(v) / log(base) }
        // Ticks at powers of `base`, every `step`-th one, at most about six.
        let low = floor(logarithm(values.min() ?? 1)), rawHigh = ceil(logarithm(values.max() ?? base))
        let step = max(1, ((rawHigh - low) / 6).rounded(.up))
        let high = max(low + step, low + ((rawHigh - low) / step).rounded(.up) * step)
        let maxEpoch = Double(epochs.max() ?? 1)
        func x(_ epoch: Int) -> Double { x0 + (maxEpoch <= 1 ? 0 : Double(epoch - 1) / (maxEpoch - 1)) * width }
        func y(_ v: Double) -> Double { y0 + height - (logarithm(v) - low) / (high - low) * height }

        var out = "<text x='\(x0)' y='\(y0 - 12)' font-weight='bold'>\(name)</text>"
        out += "<rect x='\(x0)' y='\(y0)' width='\(width)' height='\(height)' fill='none' stroke='#888'/>"
        for power in stride(from: low, through: high, by: step) {
            let yy = y(pow(base, power))
            out += "<line x1='\(x0)' y1='\(yy)' x2='\(x0 + width)' y2='\(yy)' stroke='#ddd'/>"
            out += "<text x='\(x0 - 6)' y='\(yy + 4)' text-anchor='end' font-size='11'>\(escape(label(pow(base, power))))</text>"
        }
        for tick in Set([1, Int(maxEpoch) / 2, Int(maxEpoch)]).sorted() {
            out += "<text x='\(x(tick))' y='\(y0 + height + 16)' text-anchor='middle' font-size='11'>\(tick)</text>"
        }
        out += "<text x='\(x0 + width / 2)' y='\(y0 + height + 34)' text-anchor='middle'>epoch</text>"
        for policy in FlushPolicy.allCases {
            let points = samples.filter { $0.policy == policy }
            guard !points.isEmpty else { continue }
            let path = points.map { String(format: "%.1f,%.1f", x($0.epoch), y(value($0))) }.joined(separator: " ")
            out += "<polyline points='\(path)' fill='none' stroke='\(Self.colors[policy]!)' stroke-width='2'/>"
        }
        return out + "\n"
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
