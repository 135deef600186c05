"""Review data: fork the live env, let the expert judge the policy's imagined proposals, write review samples."""
