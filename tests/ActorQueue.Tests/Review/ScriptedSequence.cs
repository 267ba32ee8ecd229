using System.Collections;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The items 0 .. <c>count - 1</c>, read once, with a script run on the reader's thread before each <c>MoveNext</c>
/// answers (its argument is the index of the item it is about to give, <c>count</c> for the end): a test holds a batch
/// at an exact point of its reading there. <c>MoveNext</c> throws <c>moveFault</c> instead of giving item
/// <c>failAt</c>, and <c>Dispose</c> throws <c>disposeFault</c> when one is given.
/// </summary>
internal sealed class ScriptedSequence(int count, Action<int>? onMove = null, int failAt = -1, Exception? moveFault = null, Exception? disposeFault = null)
    : IEnumerable<int>
{
    private int _disposed;

    /// <summary>How many times the enumerator's <c>Dispose</c> was called.</summary>
    public int Disposed => Volatile.Read(ref _disposed);

    public IEnumerator<int> GetEnumerator() => new Reader(this);

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private sealed class Reader(ScriptedSequence sequence) : IEnumerator<int>
    {
        private int _next;

        public int Current { get; private set; }

        object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            var index = _next;
            sequence.Script(index);
            if (index == sequence.FailAt)
            {
                throw sequence.MoveFault!;
            }

            if (index >= sequence.Count)
            {
                return false;
            }

            Current = index;
            _next++;
            return true;
        }

        public void Reset() => throw new NotSupportedException();

        public void Dispose()
        {
            Interlocked.Increment(ref sequence._disposed);
            if (sequence.DisposeFault is { } fault)
            {
                throw fault;
            }
        }
    }

    private int Count => count;

    private int FailAt => failAt;

    private Exception? MoveFault => moveFault;

    private Exception? DisposeFault => disposeFault;

    private void Script(int index) => onMove?.Invoke(index);
}
