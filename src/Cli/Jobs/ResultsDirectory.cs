using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// <c>--results DIR</c> in GNU parallel's layout: a job's files go to <c>DIR/1/ARG1/2/ARG2/.../</c>, one level pair per
/// input source (a job read as a command line has its command as its one argument): <c>seq</c> (its number, no
/// newline), <c>stdout</c> and <c>stderr</c>. In a directory name <c>\</c> is written <c>\\</c>, a tab <c>\t</c> and
/// <c>/</c> <c>\_</c>, as parallel writes them; <c>.</c> and <c>..</c> are written <c>\.</c> and <c>\..</c>, so each
/// job has a directory of its own; and a name longer than the file system takes is cut.
/// </summary>
/// <remarks>
/// Two jobs of one run can still get one directory (the same argument twice, or long arguments cut to the same name).
/// GNU parallel then leaves the later job's files (with -j1; run at once, their writes mix); here the job with the
/// higher sequence number always keeps the directory, whichever ends last, its files are written whole, and stderr
/// says which job's files were replaced or not written. Each directory of the run is remembered by a 128-bit hash of
/// its path and the sequence number whose files it holds (about 50 bytes a job).
/// </remarks>
internal sealed class ResultsDirectory(string root)
{
    /// <summary>Creates the root, so a directory that cannot be made is a usage error before any job starts.</summary>
    /// <exception cref="IOException">The directory cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory cannot be created.</exception>
    public void Create() => Directory.CreateDirectory(root);

    /// <summary>Which job's files each directory of this run holds, and the write under way there (by a hash of its path).</summary>
    private readonly Dictionary<UInt128, (long Seq, Task Written)> _owners = [];

    private readonly Lock _ownersGate = new();

    /// <summary>
    /// Writes a finished job's files, unless a later job of this run has the same directory. Returns what stderr
    /// should say when the directory is another job's too (whose files were replaced, or why these were not written),
    /// else <c>null</c>.
    /// </summary>
    /// <exception cref="IOException">A file could not be written.</exception>
    /// <exception cref="UnauthorizedAccessException">A file could not be written.</exception>
    public async Task<string?> WriteAsync(Job job, CapturedOutput output, CapturedOutput errors)
    {
        var directory = DirectoryOf(job);
        var key = BinaryPrimitives.ReadUInt128LittleEndian(SHA256.HashData(Encoding.UTF8.GetBytes(directory)));
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        (long Seq, Task Written) earlier;
        lock (_ownersGate)
        {
            if (!_owners.TryGetValue(key, out earlier))
            {
                earlier = (0, Task.CompletedTask);
            }
            else if (earlier.Seq > job.Seq)
            {
                return $"actorqueue: job {job.Id}: its results are not written: job {earlier.Seq}, later in the input, has the same directory {directory} (as in GNU parallel, the later job's files stay)";
            }

            _owners[key] = (job.Seq, written.Task);
        }

        try
        {
            // An earlier job's write to the same directory ends first (whether it worked or not), so the files never mix.
            await earlier.Written.ConfigureAwait(false);
            Directory.CreateDirectory(directory);
            await File.WriteAllTextAsync(Path.Combine(directory, "seq"), job.Seq.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
            await CopyAsync(output, Path.Combine(directory, "stdout")).ConfigureAwait(false);
            await CopyAsync(errors, Path.Combine(directory, "stderr")).ConfigureAwait(false);
        }
        finally
        {
            written.SetResult();
            lock (_ownersGate)
            {
                // Only the sequence number is kept once the write is over, not its task.
                if (_owners[key].Written == written.Task)
                {
                    _owners[key] = (job.Seq, Task.CompletedTask);
                }
            }
        }

        return earlier.Seq > 0
            ? $"actorqueue: job {job.Id}: its results replace those of job {earlier.Seq}, which has the same directory {directory} (as in GNU parallel, the later job's files stay)"
            : null;
    }

    /// <summary>Where <paramref name="job"/>'s files go.</summary>
    public string DirectoryOf(Job job)
    {
        IReadOnlyList<string> arguments = job.Arguments.Count > 0 ? job.Arguments : [job.Command];
        var path = new StringBuilder(root);
        for (var i = 0; i < arguments.Count; i++)
        {
            path.Append('/').Append(i + 1).Append('/').Append(Escape(arguments[i]));
        }

        return path.ToString();
    }

    /// <summary>The longest directory name Linux file systems take (NAME_MAX), in bytes.</summary>
    private const int MaxNameBytes = 255;

    /// <summary>An argument as one directory name: escaped, and cut to <see cref="MaxNameBytes"/> (parallel cuts a name mkdir refuses to the longest it accepts).</summary>
    private static string Escape(string argument)
    {
        var name = argument.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal).Replace("/", "\\_", StringComparison.Ordinal);
        if (name is "." or "..")
        {
            // As directory names these are the level itself ("." would share the directory of '', DIR/1/) and its parent
            // (".." would write beside DIR/1, or over another job's files): escaped as '\' is, they name their own.
            name = "\\" + name;
        }

        if (Encoding.UTF8.GetByteCount(name) <= MaxNameBytes)
        {
            return name;
        }

        var cut = name.Length;
        while (Encoding.UTF8.GetByteCount(name.AsSpan(0, cut)) > MaxNameBytes || char.IsHighSurrogate(name[cut - 1]))
        {
            cut--;
        }

        return name[..cut];
    }

    private static async Task CopyAsync(CapturedOutput captured, string path)
    {
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1, FileOptions.Asynchronous);
        await foreach (var chunk in captured.ChunksAsync().ConfigureAwait(false))
        {
            await file.WriteAsync(chunk).ConfigureAwait(false);
        }
    }
}
