using ActorQueue.Actors;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 53: a durable queue's name lock file (<see cref="QueueFileLock"/>) removed or replaced by another process
/// between the queue's open of it and its lock left the queue holding a lock on a file no longer at that path: the next
/// process to open the path locked another file, and two queues of one name each held "the" lock. The lock is now
/// checked, once taken, against the file the path names (device and inode), and taken again on that one. The removal
/// happens between the open and the check through the test hook of <see cref="QueueFileLock.Take(string, string, Action{string})"/>.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[System.Runtime.Versioning.UnsupportedOSPlatform("macos")]
public sealed class QueueFileLockRound53Tests : IDisposable
{
    private const string Name = "orders";

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// The lock file removed (or removed and made again, empty) once, just after the first open locked it: the lock the
    /// queue gets is the lock of the file at the path, so a second taker is refused. Failed before (the hook in place,
    /// no check): "a second Take locked the name beside the first: no refusal" (both rows). Mutant: the check only asks
    /// whether the path exists (fails the replaced row alike).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_lock_file_replaced_or_removed_between_open_and_lock_is_locked_again(bool replaced)
    {
        var database = _scratch.PathOf("q.db");
        var opens = 0;
        using var taken = QueueFileLock.Take(database, Name, path =>
        {
            if (++opens == 1)
            {
                File.Delete(path);
                if (replaced)
                {
                    File.WriteAllBytes(path, []);
                }
            }
        });

        var second = Record.Exception(() => QueueFileLock.Take(database, Name).Dispose());
        Assert.True(second is InvalidOperationException, $"a second Take locked the name beside the first: {second?.Message ?? "no refusal"}");
        Assert.Equal(2, opens);
        Assert.True(File.Exists(QueueFileLock.PathFor(database, Name)), "the lock file is gone");
    }

    /// <summary>
    /// Replaced after every open, the lock is refused after <see cref="QueueFileLock.MaxAttempts"/> opens, holding none:
    /// the next Take gets it at once. Failed before (the hook in place, no check): "Assert.Throws() Failure: No exception
    /// was thrown". Mutant: the last attempt's lock kept instead of the refusal (fails alike).
    /// </summary>
    [Fact]
    public void A_lock_file_replaced_after_every_open_is_refused_and_left_unlocked()
    {
        var database = _scratch.PathOf("q.db");
        var opens = 0;
        var refusal = Assert.Throws<QueueStorageException>(() => QueueFileLock.Take(database, Name, path =>
        {
            opens++;
            File.Delete(path);
            File.WriteAllBytes(path, []);
        }));

        Assert.Contains("was removed or replaced each of the 10 times it was locked", refusal.Message, StringComparison.Ordinal);
        Assert.Equal(QueueFileLock.MaxAttempts, opens);
        using var next = QueueFileLock.Take(database, Name);
    }

    /// <summary>Nobody interferes: one open, and the lock holds against a second taker. Passed before (a control).</summary>
    [Fact]
    public void An_undisturbed_lock_is_taken_with_one_open()
    {
        var database = _scratch.PathOf("q.db");
        var opens = 0;
        using var taken = QueueFileLock.Take(database, Name, _ => opens++);

        Assert.Equal(1, opens);
        Assert.Throws<InvalidOperationException>(() => QueueFileLock.Take(database, Name));
    }
}
