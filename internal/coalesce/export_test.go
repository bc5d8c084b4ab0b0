package coalesce

// Retained is the capacity of the writer's two buffers: what it keeps
// between writes.
func (c *Writer) Retained() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cap(c.pending) + cap(c.spare)
}
