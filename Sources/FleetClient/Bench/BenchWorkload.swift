/// What `fleet bench` sends: every prompt and think time follows from `seed`, so a run can be repeated exactly
/// (under another routing policy, say) — only the answers, which agent turns resend, come from the server.
public struct BenchWorkload: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        /// Sessions with a long context of their own, resent turn after turn with the history grown by the last
        /// answer and a new tool output: what cache-aware routing is for.
        case agent
        /// Independent short prompts: no prefix worth caching.
        case chat
        /// `POST /v1/embeddings` with short inputs.
        case embeddings
    }

    public var kind: Kind
    /// Agent: concurrent conversations. Chat and embeddings: with `turns`, the number of requests is
    /// `sessions × turns`.
    public var sessions: Int
    /// Agent: requests per session.
    public var turns: Int
    public var seed: UInt64
    /// Which run of a comparison this is: each run gets texts of its own (same lengths, same think times), so
    /// what one policy's run left in llama-server's caches never helps the next one.
    public var run = 0
    /// Agent: the length of each session's system prompt, in tokens of about 4 characters.
    public var contextTokens: Int
    /// `max_tokens` of every chat request.
    public var maxTokens: Int
    /// Agent: the longest pause between a turn's answer and the next turn (each pause is uniform in 0...this).
    public var thinkTime: Duration

    public init(kind: Kind, sessions: Int, turns: Int, seed: UInt64, contextTokens: Int = 1200, maxTokens: Int = 16,
                thinkTime: Duration = .seconds(2)) {
        self.kind = kind
        self.sessions = sessions
        self.turns = turns
        self.seed = seed
        self.contextTokens = contextTokens
        self.maxTokens = maxTokens
        self.thinkTime = thinkTime
    }

    /// The seed of the texts: the run's own.
    private var textSeed: UInt64 { run == 0 ? seed : seed ^ (UInt64(run) &* 0x9E37_79B9_7F4A_7C15) }

    // MARK: Agent sessions

    /// Session `session`'s system prompt: about `contextTokens` tokens of pseudo-text of its own, starting with
    /// the session's tag, so two sessions differ from their first character on (routing keys on prefixes).
    public func systemPrompt(session: Int) -> String {
        var random = SplitMix64(seed: textSeed, 1, session)
        let tag = Self.tag(session, random: &random)
        var text = tag + " You are agent \(tag), working in repository " + PseudoText.word(&random) + "-"
            + PseudoText.word(&random) + ". "
        text += PseudoText.sentences(characters: max(0, contextTokens * 4 - text.count), random: &random)
        return text
    }

    /// The user message of `turn` (1-based) in `session`: the task on the first turn, then a tool's output of
    /// about 100–200 tokens.
    public func userMessage(session: Int, turn: Int) -> String {
        var random = SplitMix64(seed: textSeed, 2, session, turn)
        let tokens = random.int(in: 100...200)
        let header = turn == 1
            ? "Task: " + PseudoText.sentences(characters: 120, random: &random) + "\nFirst tool output:\n"
            : "Tool output (step \(turn - 1)):\n"
        return header + PseudoText.toolOutput(characters: tokens * 4, random: &random)
    }

    /// The pause before `turn` of `session` (before the first turn too, so sessions do not start in lockstep).
    public func thinkTime(session: Int, turn: Int) -> Duration {
        var random = SplitMix64(seed: seed, 3, session, turn)
        return thinkTime * random.unit()
    }

    /// The messages of a session's turn: system, then each earlier turn's user message and the answer it got,
    /// then this turn's user message. `answers` are the earlier turns' answers as the server returned them.
    public func messages(session: Int, turn: Int, answers: [String]) -> [GatewayClient.Message] {
        var messages = [GatewayClient.Message(role: "system", content: systemPrompt(session: session))]
        for earlier in 1..<turn {
            messages.append(.init(role: "user", content: userMessage(session: session, turn: earlier)))
            messages.append(.init(role: "assistant", content: earlier <= answers.count ? answers[earlier - 1] : ""))
        }
        messages.append(.init(role: "user", content: userMessage(session: session, turn: turn)))
        return messages
    }

    // MARK: Independent requests

    /// Chat request `index`'s prompt: short, unique from its first character on.
    public func chatPrompt(index: Int) -> String {
        var random = SplitMix64(seed: textSeed, 4, index)
        return Self.tag(index, random: &random) + " " + PseudoText.sentences(characters: random.int(in: 80...240), random: &random)
    }

    /// Embeddings request `index`'s input: short, unique from its first character on.
    public func embeddingInput(index: Int) -> String {
        var random = SplitMix64(seed: textSeed, 5, index)
        return Self.tag(index, random: &random) + " " + PseudoText.sentences(characters: random.int(in: 40...160), random: &random)
    }

    /// A short unique tag for `index` whose FIRST character already differs between neighbours: `index` in base
    /// 62, least significant digit first, through an alphabet shuffled by the seed. Indexes that share a first
    /// character (62 apart) differ by the second; a seed-dependent letter follows.
    static func tag(_ index: Int, random: inout SplitMix64) -> String {
        var alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var shuffler = SplitMix64(seed: 0x5EED)
        for position in stride(from: alphabet.count - 1, to: 0, by: -1) {
            alphabet.swapAt(position, shuffler.int(below: position + 1))
        }
        var digits: [Character] = []
        var rest = index
        repeat {
            digits.append(alphabet[rest % alphabet.count])
            rest /= alphabet.count
        } while rest > 0 || digits.count < 2
        digits.append(alphabet[random.int(below: alphabet.count)])
        return String(digits)
    }
}

/// Varied text made of common words, so prompts look like prose and code output to a tokenizer (a real model
/// tokenizes it at roughly 4 characters per token), never repeated blocks a cache could share by accident.
enum PseudoText {
    static let words = """
        the a of to and in is it that for on with as this be by from at or an are was not but which have has \
        file path module function value error result request response server client model token cache prefix \
        session agent context history tool output build test commit branch review change config route pool \
        instance replica slot queue latency stream event header status policy weight memory thread process \
        signal restart reload swap gateway metric counter budget limit timeout retry backoff health probe \
        parse decode encode write read open close send receive merge split sort filter map reduce compare \
        quickly slowly carefully often never always again later before after during while until because \
        small large empty full first last next previous other same different every each some many few \
        green blue amber violet copper silver granite cedar maple harbor canyon meadow summit river island
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)

    static func word(_ random: inout SplitMix64) -> String {
        words[random.int(below: words.count)]
    }

    /// Sentences of random words, about `characters` long.
    static func sentences(characters: Int, random: inout SplitMix64) -> String {
        var text = ""
        while text.count < characters {
            let length = random.int(in: 6...16)
            var sentence = (0..<length).map { _ in word(&random) }
            sentence[0] = sentence[0].prefix(1).uppercased() + sentence[0].dropFirst()
            if random.int(below: 4) == 0 { sentence.insert(String(random.int(below: 10_000)), at: random.int(below: length)) }
            text += sentence.joined(separator: " ") + (random.int(below: 5) == 0 ? "? " : ". ")
        }
        return text
    }

    /// Lines like a tool's output (paths, line numbers, messages), about `characters` long.
    static func toolOutput(characters: Int, random: inout SplitMix64) -> String {
        var text = ""
        while text.count < characters {
            let path = "src/\(word(&random))/\(word(&random))_\(word(&random)).swift"
            let line = random.int(in: 1...2000)
            let message = (0..<random.int(in: 4...10)).map { _ in word(&random) }.joined(separator: " ")
            text += "\(path):\(line): \(message)\n"
        }
        return text
    }
}
