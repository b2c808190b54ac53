-- Stand-ins for the Lightroom Classic SDK objects FocusDrop's export provider uses, so that the tests run
-- the provider itself in Lua 5.1. ``host`` gives file-system access from Python: exists, mkdirs, move,
-- read, sleep, now. ``frames``: {path=, time=, source=} for each rendition, already rendered to a real TIFF.
-- Returns the global ``import`` function, an export context, and what the provider did
-- (``done.added``: {path, position}, ``done.messages``: dialog texts).
return function(host, frames, properties)
	local done = { added = {}, messages = {} }
	local modules = {
		LrPathUtils = {
			child = function(folder, name) return folder .. "/" .. name end,
			leafName = function(path) return string.match(path, "([^/\\]+)$") end,
			removeExtension = function(name) return (string.gsub(name, "%.[^.]*$", "")) end,
		},
		LrFileUtils = {
			exists = function(path) return host.exists(path) end,
			createAllDirectories = function(path) host.mkdirs(path) return true end,
			move = function(from, to) host.move(from, to) end,
			readFile = function(path) return host.read(path) end,
		},
		LrTasks = { sleep = function(seconds) host.sleep(seconds) end },
		LrDate = { currentTime = function() return host.now() end },
		LrDialogs = { message = function(title, text) table.insert(done.messages, title .. ": " .. text) end },
		LrErrors = { throwUserError = function(text) error(text, 0) end },
		LrView = { bind = function(key) return key end },
		LrApplication = { activeCatalog = function()
			return {
				withWriteAccessDo = function(self, name, action) action() end,
				addPhoto = function(self, path, source, position)
					table.insert(done.added, { path = path, source = source.path, position = position })
				end,
			}
		end },
	}
	local function import(name)
		return assert(modules[name], "no stand-in for " .. name)
	end
	local renditions = {}
	for i, frame in ipairs(frames) do
		local photo = { path = frame.source }
		function photo:getRawMetadata(key)
			if key == "dateTimeOriginal" then return frame.time end
			if key == "path" then return frame.source end
		end
		function photo:getFormattedMetadata(key) return modules.LrPathUtils.leafName(frame.source) end
		renditions[i] = { photo = photo, waitForRender = function(self) return true, frame.path end }
	end
	local context = { propertyTable = properties }
	function context:renditions(options)
		local i = 0
		return function()
			i = i + 1
			if renditions[i] then return i, renditions[i] end
		end
	end
	return import, context, done
end
