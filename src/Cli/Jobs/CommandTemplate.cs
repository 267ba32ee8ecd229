using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// A command with GNU parallel's replacement strings, filled in per job: <c>{}</c> the argument, <c>{.}</c> without its
/// extension, <c>{/}</c> its basename, <c>{//}</c> its directory, <c>{/.}</c> the basename without extension, <c>{#}</c>
/// the job's sequence number, <c>{%}</c> its job slot; <c>{N}</c>, <c>{N.}</c>, <c>{N/}</c>, <c>{N//}</c>, <c>{N/.}</c>
/// take the argument of source N. Arguments are shell-quoted as parallel quotes them; a command with no replacement
/// string gets <c>" {}"</c> appended, and no command at all runs the arguments themselves as the command.
/// </summary>
internal sealed partial class CommandTemplate
{
    private readonly string? _command;

    private CommandTemplate(string? command, bool usesSlot)
    {
        _command = command;
        UsesSlot = usesSlot;
    }

    /// <summary>Whether the command holds <c>{%}</c>, so it can only be filled in once the job has its slot.</summary>
    public bool UsesSlot { get; }

    /// <summary>
    /// The template of <paramref name="command"/> (the words before the first <c>:::</c>, joined by spaces; empty for
    /// none), or the problem to report as a usage error: a <c>{N}</c> whose N no int holds, which could only fail once
    /// the first job is filled in, after the run began; a <c>{= perl =}</c>, which would reach the shell as written.
    /// </summary>
    public static (CommandTemplate? Template, string? Problem) Parse(string command)
    {
        if (string.IsNullOrWhiteSpace(command))
        {
            return (new CommandTemplate(null, usesSlot: false), null);
        }

        if (PerlReplacement().Match(command) is { Success: true } perl)
        {
            // parallel would run it as perl; passed to the shell as written, the job would run something else.
            return (null, $"the command's {perl.Value} is GNU parallel's perl replacement string, which actorqueue does not run; use a shell expression on {{}} instead");
        }

        foreach (Match match in Replacement().Matches(command))
        {
            if (match.Groups["source"].Value is { Length: > 0 } number && !int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                return (null, $"the command's replacement string {match.Value} names input source {number}, more than there can be (at most {int.MaxValue})");
            }
        }

        return Replacement().IsMatch(command)
            ? (new CommandTemplate(command, command.Contains("{%}", StringComparison.Ordinal)), null)
            : (new CommandTemplate(command + " {}", usesSlot: false), null);
    }

    /// <summary>The command for one job: <paramref name="arguments"/> (one per source), its sequence number and slot.</summary>
    public string Expand(IReadOnlyList<string> arguments, long seq, int slot)
    {
        if (_command is null)
        {
            return string.Join(' ', arguments);
        }

        return Replacement().Replace(_command, match =>
        {
            var token = match.Value;
            if (token == "{#}")
            {
                return seq.ToString(CultureInfo.InvariantCulture);
            }

            if (token == "{%}")
            {
                return slot.ToString(CultureInfo.InvariantCulture);
            }

            var transform = match.Groups["transform"].Value;
            if (match.Groups["source"].Value is { Length: > 0 } number)
            {
                var index = int.Parse(number, CultureInfo.InvariantCulture) - 1;
                return Quote(Transform(index < arguments.Count ? arguments[index] : "", transform));
            }

            return string.Join(' ', arguments.Select(argument => Quote(Transform(argument, transform))));
        });
    }

    private static string Transform(string argument, string transform) => transform switch
    {
        "." => WithoutExtension(argument),
        "/" => Basename(argument),
        "//" => Dirname(argument),
        "/." => WithoutExtension(Basename(argument)),
        _ => argument,
    };

    /// <summary>parallel's <c>s:\.[^/.]*$::</c>.</summary>
    private static string WithoutExtension(string path) => Extension().Replace(path, "", 1);

    /// <summary>parallel's <c>s:.*/::</c>.</summary>
    private static string Basename(string path) => path[(path.LastIndexOf('/') + 1)..];

    /// <summary>Perl's <c>File::Basename::dirname</c> on Unix, which parallel calls: "a" → ".", "a/b/" → "a", "/" → "/".</summary>
    private static string Dirname(string path)
    {
        var (directory, name) = FileParse(StripTrailingSlashes(path));
        directory = StripTrailingSlashes(directory);
        if (name.Length == 0)
        {
            (directory, _) = FileParse(directory);
            directory = StripTrailingSlashes(directory);
        }

        return directory;
    }

    private static (string Directory, string Name) FileParse(string path)
    {
        var slash = path.LastIndexOf('/');
        return slash < 0 ? ("./", path) : (path[..(slash + 1)], path[(slash + 1)..]);
    }

    /// <summary>Perl's <c>s{(.)/*\z}{$1}s</c>: trailing slashes go, but never the first character.</summary>
    private static string StripTrailingSlashes(string path)
    {
        var end = path.Length;
        while (end > 1 && path[end - 1] == '/')
        {
            end--;
        }

        return path[..end];
    }

    /// <summary>
    /// parallel's quoting for Bourne shells: a word of only <c>[-_.+a-zA-Z0-9/]</c> stays as it is; anything else is
    /// single-quoted with each <c>'</c> written as <c>'"'"'</c>; the empty word is <c>''</c>.
    /// </summary>
    public static string Quote(string word)
    {
        if (word.Length == 0)
        {
            return "''";
        }

        if (!Unsafe().IsMatch(word))
        {
            return word;
        }

        var quoted = new StringBuilder("'").Append(word.Replace("'", "'\"'\"'", StringComparison.Ordinal)).Append('\'').ToString();
        if (quoted.StartsWith("''", StringComparison.Ordinal))
        {
            quoted = quoted[2..];
        }

        if (quoted.EndsWith("''", StringComparison.Ordinal))
        {
            quoted = quoted[..^2];
        }

        return quoted;
    }

    [GeneratedRegex(@"\{(?:#|%|(?<source>[1-9][0-9]*)?(?<transform>\.|//|/\.|/)?)\}", RegexOptions.CultureInvariant)]
    private static partial Regex Replacement();

    /// <summary>GNU parallel's <c>{= perl =}</c> and <c>{=N perl =}</c>.</summary>
    [GeneratedRegex(@"\{=.*?=\}", RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex PerlReplacement();

    [GeneratedRegex(@"\.[^/.]*$", RegexOptions.CultureInvariant)]
    private static partial Regex Extension();

    [GeneratedRegex("[^-_.+a-zA-Z0-9/]", RegexOptions.CultureInvariant)]
    private static partial Regex Unsafe();
}
