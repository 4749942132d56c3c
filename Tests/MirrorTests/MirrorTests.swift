import Mirror
