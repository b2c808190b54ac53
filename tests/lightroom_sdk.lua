-- Stand-ins for the Lightroom Classic SDK objects FocusDrop's export provider uses, so that the tests run
-- the provider itself in Lua 5.1. They refuse what Lightroom refuses (the SDK reference's contracts):
-- - LrFileUtils.move and copy return false and a message rather than raise, and move takes files only;
-- - catalog:withWriteAccessDo throws at once while another write holds the catalogue unless it was given
--   timeoutParams; with them it waits up to their timeout, then calls their callback (not the action);
-- - catalog:addPhoto with a stack position throws unless the photo is in the same folder as the one it
--   is stacked with ("You cannot stack images stored in different folders");
-- - an LrProgressScope reports cancelled once the user has pressed Cancel.
-- ``host`` gives file-system access from Python: exists, mkdirs, isfile, move (raises), copy, read,
-- sleep, now. ``frames``: {path=, time=, source=} per rendition, rendered to a real TIFF. ``behaviour``:
-- busy (seconds another write holds the catalogue from the first attempt on), cancel_after (progress checks before Cancel),
-- fail_move (a text: moving a path containing it fails, as across volumes). Returns the global ``import``
-- function, an export context, and what the provider did (``done.added``: {path, source, position},
-- ``done.messages``: dialog texts, ``done.captions``: progress captions, ``done.writes``: write attempts).
return function(host, frames, properties, behaviour)
	local done = { added = {}, messages = {}, captions = {}, writes = 0 }
	local clock, cancelChecks, busyUntil = 0, 0, nil
	local function parent(path) return string.match(path, "^(.*)[/\\][^/\\]+$") end
	local modules = {
		LrPathUtils = {
			child = function(folder, name) return folder .. "/" .. name end,
			leafName = function(path) return string.match(path, "([^/\\]+)$") end,
			parent = parent,
			removeExtension = function(name) return (string.gsub(name, "%.[^.]*$", "")) end,
			extension = function(name) return string.match(name, "%.([^./\\]*)$") or "" end,
		},
		LrFileUtils = {
			exists = function(path) return host.exists(path) end,
			createAllDirectories = function(path) host.mkdirs(path) return true end,
			move = function(from, to)
				if not host.isfile(from) then return false, "not a file: " .. from end
				if behaviour.fail_move and string.find(from, behaviour.fail_move, 1, true) then
					return false, "cannot move across volumes"
				end
				local ok, message = pcall(host.move, from, to)
				return ok, not ok and tostring(message) or nil
			end,
			copy = function(from, to)
				local ok, message = pcall(host.copy, from, to)
				return ok, not ok and tostring(message) or nil
			end,
			delete = function(path) return pcall(host.delete, path) end,
			readFile = function(path) return host.read(path) end,
		},
		LrTasks = { sleep = function(seconds) clock = clock + seconds host.sleep(seconds) end },
		LrDate = { currentTime = function() return host.now() end },
		LrDialogs = { message = function(title, text) table.insert(done.messages, title .. ": " .. (text or "")) end },
		LrErrors = { throwUserError = function(text) error(text, 0) end },
		LrView = { bind = function(key) return key end },
		LrProgressScope = function(options)
			local scope = {}
			function scope:setCaption(text) table.insert(done.captions, text) end
			function scope:setPortionComplete(done_, total) end
			function scope:isCanceled()
				cancelChecks = cancelChecks + 1
				return behaviour.cancel_after ~= nil and cancelChecks > behaviour.cancel_after
			end
			function scope:done() end
			return scope
		end,
		LrApplication = { activeCatalog = function()
			return {
				withWriteAccessDo = function(self, name, action, timeoutParams)
					done.writes = done.writes + 1
					busyUntil = busyUntil or clock + (behaviour.busy or 0)
					local busy = busyUntil > clock
					if busy and timeoutParams == nil then
						error("LrCatalog:withWriteAccessDo: could not execute action '" .. name .. "'. It was "
							.. "blocked by another write access call, and no timeout parameters were provided.", 0)
					end
					if busy then
						clock = clock + (timeoutParams.timeout or 0)
						if busyUntil > clock then
							if timeoutParams.callback then timeoutParams.callback() end
							return "aborted"
						end
					end
					action()
					return "executed"
				end,
				addPhoto = function(self, path, source, position)
					if source ~= nil and parent(path) ~= parent(source.path) then
						error("You cannot stack images stored in different folders", 0)
					end
					table.insert(done.added, { path = path, source = source and source.path, position = position })
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
