using System.Text;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// The command line as the kernel holds it. The .NET host decodes arguments leniently, each byte that is not UTF-8
/// becoming U+FFFD before <c>Main</c> sees it, so <c>::: $'caf\xe9'</c> would run as a changed command; a job file's
/// lines in another encoding are refused, and so is such an argument here, by its raw bytes in
/// <c>/proc/self/cmdline</c>.
/// </summary>
internal static class ArgumentBytes
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// The usage problem of the first of <paramref name="args"/> whose bytes are not UTF-8, or <c>null</c>: none is, or
    /// the raw command line cannot be read (no <c>/proc</c>) or does not end with these arguments.
    /// </summary>
    public static string? NotUtf8(string[] args)
    {
        byte[] cmdline;
        try
        {
            cmdline = File.ReadAllBytes("/proc/self/cmdline");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return null;
        }

        // NUL-terminated words (an empty argument is a lone NUL): the host (dotnet and the dll, or the app host), then
        // Main's arguments, last.
        var words = Words(cmdline is [.., 0] ? cmdline[..^1] : cmdline);
        if (words.Count < args.Length)
        {
            return null;
        }

        var raw = words[^args.Length..];
        string? problem = null;
        for (var i = 0; i < args.Length; i++)
        {
            var text = Decode(raw[i]);
            if (text is null ? !args[i].Contains('\uFFFD', StringComparison.Ordinal) : text != args[i])
            {
                return null; // not this process's arguments after all: nothing to compare with
            }

            problem ??= text is null ? $"argument {i + 1} '{Shown(raw[i])}' is not valid UTF-8 (commands reach /bin/sh as UTF-8 text, so it would run altered)" : null;
        }

        return problem;
    }

    private static List<byte[]> Words(byte[] bytes)
    {
        var words = new List<byte[]>();
        var start = 0;
        for (var i = 0; i <= bytes.Length; i++)
        {
            if (i == bytes.Length || bytes[i] == 0)
            {
                words.Add(bytes[start..i]);
                start = i + 1;
            }
        }

        return words;
    }

    private static string? Decode(byte[] bytes)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    /// <summary>The argument with each byte that is not UTF-8 written <c>\xNN</c>, so the usage line shows what was given.</summary>
    private static string Shown(byte[] bytes)
    {
        var shown = new StringBuilder();
        var rest = bytes.AsSpan();
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(rest, out var rune, out var used) == System.Buffers.OperationStatus.Done)
            {
                shown.Append(rune.ToString());
            }
            else
            {
                shown.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{rest[0]:X2}");
                used = 1;
            }

            rest = rest[used..];
        }

        return shown.ToString();
    }
}
