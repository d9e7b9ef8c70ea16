"""custodes: a personal-records vault where every access has a reason and leaves a trace."""
